// Drives the MFE test host in Chromium against a running api: the remote is loaded from the api
// (/api/ingestion/mfe/remoteEntry.js, through the page server's proxy, as DataHub loads it behind its reverse
// proxy), mounted into a slot, used, and unmounted. playwright-core with the system Chromium; nothing is downloaded.
//
//   API_URL=http://127.0.0.1:8000        api to proxy /api/ingestion/* to (required)
//   API_BEARER_TOKEN=...                 sent on proxied calls (the test browser has no DataHub session)
//   MFE_SLOT=entity.detail.tab|nav.page  which slot to mount (default entity.detail.tab)
//   DATASET_URN=urn:li:dataset:(...)     the entity page's dataset (entity.detail.tab)
//   MFE_HOST_DESIGN=nav-only|contract-version|placement-tabname
//                                        with MFE_CONFIG: the host loads that config file as this DataHub host design
//                                        does (hostDesigns.ts) and mounts the entry it places in the slot
//   MFE_CONFIG=/path/mfe.config.yaml     served to the host at ./mfe/config (DataHub's /mfe/config)
//   MFE_EXPECT=succeeded|failed|hidden|listed|absent
//                                        succeeded/failed: click Run, confirm, wait for that end state;
//                                        hidden: no target, the panel says so; listed: the nav page drew its list
//                                        (or its "not available" notice when the api has no list endpoint);
//                                        absent: the host design places no entry of the config in the slot
//   MFE_EXPECT_RUN_IN_LIST=<runId>       listed: this run must be a row of the list
//   MFE_SCREENSHOT=/path/shot.png        screenshot of the mounted slot, taken before unmounting
//   MFE_QUIET_MS=3000                    how long to watch for requests after unmount
//   E2E_TIMEOUT_MS=60000, CHROMIUM_PATH=/usr/bin/chromium
//
// Prints one JSON line: {ok, host, phase, status, rows, assets, afterUnmount, runRequests, error?}.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { CHROMIUM_ARGS } from '../../e2e/run.mjs';
import { startServer } from '../../e2e/server.mjs';
import { HOST_DIST, buildHost } from './build.mjs';

const TERMINAL = ['succeeded', 'failed', 'cancelled', 'lost', 'idle'];

async function main() {
    const apiUrl = process.env.API_URL;
    if (!apiUrl) throw new Error('API_URL is required');
    const slot = process.env.MFE_SLOT ?? 'entity.detail.tab';
    const datasetUrn = process.env.DATASET_URN ?? '';
    const expect = process.env.MFE_EXPECT ?? (slot === 'nav.page' ? 'listed' : 'succeeded');
    const timeout = Number(process.env.E2E_TIMEOUT_MS ?? 60000);
    const quietMs = Number(process.env.MFE_QUIET_MS ?? 3000);
    const screenshot = process.env.MFE_SCREENSHOT ? resolve(process.env.MFE_SCREENSHOT) : null;

    const design = process.env.MFE_HOST_DESIGN ?? '';
    await buildHost();
    if (design) {
        if (!process.env.MFE_CONFIG) throw new Error('MFE_HOST_DESIGN needs MFE_CONFIG');
        mkdirSync(join(HOST_DIST, 'mfe'), { recursive: true });
        copyFileSync(resolve(process.env.MFE_CONFIG), join(HOST_DIST, 'mfe', 'config'));
    }
    const server = await startServer({ apiUrl, bearerToken: process.env.API_BEARER_TOKEN, root: HOST_DIST });
    const userDataDir = mkdtempSync(join(tmpdir(), 'mfe-host-profile-'));
    const result = { ok: false, slot, expect, phase: null, status: null, rows: [], assets: {}, runRequests: 0 };
    let context;
    try {
        // `break drive` ends the drive early (MFE_EXPECT=absent) and still prints the result.
        drive: {
        context = await chromium.launchPersistentContext(userDataDir, {
            executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
            headless: true,
            args: CHROMIUM_ARGS,
            viewport: { width: 1200, height: slot === 'nav.page' ? 620 : 700 },
        });
        const page = context.pages()[0] ?? (await context.newPage());
        const apiRequests = [];
        page.on('request', (request) => {
            const path = new URL(request.url()).pathname;
            if (path.startsWith('/api/ingestion/') && !path.startsWith('/api/ingestion/mfe/')) {
                apiRequests.push({ path, at: Date.now() });
            }
            if (path === '/api/ingestion/run') result.runRequests += 1;
        });
        page.on('response', async (response) => {
            const path = new URL(response.url()).pathname;
            if (path.startsWith('/api/ingestion/mfe/')) {
                const name = path.slice('/api/ingestion/mfe/'.length);
                // The first answer for each file; later loads (the remount) only add their status.
                if (!(name in result.assets)) {
                    result.assets[name] = {
                        status: response.status(),
                        contentType: response.headers()['content-type'] ?? null,
                        cacheControl: response.headers()['cache-control'] ?? null,
                        statuses: [],
                    };
                }
                result.assets[name].statuses.push(response.status());
            }
        });
        page.on('console', (msg) => {
            if (msg.type() === 'error') console.error(`[page] ${msg.text()}`);
        });
        page.on('pageerror', (error) => console.error(`[page error] ${error.message}`));

        const query = new URLSearchParams({
            slot,
            urn: datasetUrn,
            remoteEntry: '/api/ingestion/mfe/remoteEntry.js',
            module: 'lambdaTriggerMFE/mount',
            ...(design ? { design } : {}),
        });
        await page.goto(`${server.url}/?${query}`, { waitUntil: 'load' });
        await page.waitForFunction(() => window.mfeHost && window.mfeHost.state.phase !== 'loading', undefined, {
            timeout: 20000,
        });
        result.host = await page.evaluate(() => ({ ...window.mfeHost.state }));
        if (expect === 'absent') {
            // Nothing may be mounted: no slot content, and the remote is never fetched.
            result.phase = result.host.phase;
            const panels = await page.evaluate(() => document.querySelectorAll('.lambda-trigger-mfe').length);
            result.ok = result.host.phase === 'absent' && result.host.mountCalls === 0 && panels === 0;
            if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
            break drive;
        }
        if (result.host.phase !== 'mounted') throw new Error(`the host could not mount the remote: ${result.host.error}`);

        if (slot === 'entity.detail.tab') {
            await page.getByTestId('lambda-trigger-dataset-panel').waitFor({ state: 'visible', timeout: 10000 });
            if (expect === 'hidden') {
                await page.getByTestId('lambda-trigger-no-target').waitFor({ state: 'visible', timeout: 10000 });
                result.phase = 'hidden';
                result.ok = (await page.getByTestId('run-ingestion-button').count()) === 0;
            } else {
                const button = page.getByTestId('run-ingestion-button');
                await button.waitFor({ state: 'visible', timeout: 10000 });
                await button.click();
                const dialog = page.getByRole('dialog', { name: 'Run ingestion' });
                await dialog.waitFor({ state: 'visible', timeout: 10000 });
                await dialog.getByLabel('Reason (optional)').fill('mfe check');
                await dialog.getByRole('button', { name: 'Run' }).click();
                await page.waitForFunction(
                    (terminal) =>
                        terminal.includes(
                            document.querySelector('[data-testid="run-ingestion"]')?.getAttribute('data-phase') ?? '',
                        ),
                    TERMINAL,
                    { timeout, polling: 250 },
                );
                result.phase = await page.getByTestId('run-ingestion').getAttribute('data-phase');
                result.status = (await page.getByTestId('run-ingestion-status').textContent())?.trim() ?? null;
                result.ok = result.phase === expect;
                // The panel refreshes its "Last runs" when the run ends: give the list its answer.
                await page.waitForLoadState('networkidle').catch(() => undefined);
            }
            result.rows = await readRows(page, 'lambda-trigger-dataset-runs');
        } else {
            await page.getByTestId('lambda-trigger-runs-page').waitFor({ state: 'visible', timeout: 10000 });
            await page.waitForFunction(
                () =>
                    !!document.querySelector('[data-testid="lambda-trigger-runs-error"]') ||
                    (!!document.querySelector('[data-testid="lambda-trigger-runs"]') &&
                        !document.querySelector('[data-testid="lambda-trigger-runs"] .ant-spin-spinning')),
                undefined,
                { timeout: 20000, polling: 100 },
            );
            const notice = page.getByTestId('lambda-trigger-runs-error');
            if (await notice.count()) {
                result.phase = 'notice';
                result.status = (await notice.textContent())?.trim() ?? null;
            } else {
                result.phase = 'listed';
                result.rows = await readRows(page, 'lambda-trigger-runs');
            }
            const wanted = process.env.MFE_EXPECT_RUN_IN_LIST;
            result.ok = expect === 'listed' && (result.phase === 'listed' || result.phase === 'notice');
            if (wanted && result.phase === 'listed') result.ok = result.ok && result.rows.some((r) => r.runId === wanted);
        }
        await page.waitForTimeout(400); // toasts and tags settle before the picture
        if (screenshot) {
            mkdirSync(dirname(screenshot), { recursive: true });
            await page.screenshot({ path: screenshot, fullPage: true });
            result.screenshot = screenshot;
        }

        // Unmount as the host does when the slot goes away, then watch for anything left behind.
        const before = apiRequests.length;
        await page.evaluate(() => window.mfeHost.unmount());
        await page.waitForTimeout(quietMs);
        result.afterUnmount = await page.evaluate(() => {
            const slotEl = document.getElementById('mfe-slot');
            return {
                cleanupCalls: window.mfeHost.state.cleanupCalls,
                cleanupReturned: window.mfeHost.state.cleanupReturned,
                slotChildren: slotEl ? slotEl.childElementCount : -1,
                panels: document.querySelectorAll('.lambda-trigger-mfe').length,
                modalRoots: document.querySelectorAll('.ant-modal-root').length,
                openModals: Array.from(document.querySelectorAll('.ant-modal-wrap')).filter(
                    (el) => (el).style.display !== 'none',
                ).length,
            };
        });
        result.afterUnmount.apiRequests = apiRequests.length - before;

        // Mount again, as DataHub does when the user comes back to the tab or page (setRemote + getRemote again),
        // then unmount: the second mount works and cleans up as well.
        await page.evaluate(() => window.mfeHost.remount());
        await page.locator('.lambda-trigger-mfe').first().waitFor({ state: 'attached', timeout: 10000 });
        result.remount = await page.evaluate(() => ({
            phase: window.mfeHost.state.phase,
            mountCalls: window.mfeHost.state.mountCalls,
            panels: document.querySelectorAll('.lambda-trigger-mfe').length,
        }));
        await page.evaluate(() => window.mfeHost.unmount());
        result.remount.cleanupCalls = await page.evaluate(() => window.mfeHost.state.cleanupCalls);
        result.remount.panelsAfter = await page.evaluate(() => document.querySelectorAll('.lambda-trigger-mfe').length);
        }
    } catch (error) {
        result.ok = false;
        result.error = error instanceof Error ? error.message.split('\n')[0] : String(error);
    } finally {
        if (context) await context.close().catch(() => undefined);
        rmSync(userDataDir, { recursive: true, force: true });
        await server.close();
    }
    console.log(JSON.stringify(result));
    return result.ok ? 0 : 1;
}

async function readRows(page, testId) {
    return page.evaluate((id) => {
        const table = document.querySelector(`[data-testid="${id}"]`);
        if (!table) return [];
        return Array.from(table.querySelectorAll('tbody tr.ant-table-row')).map((tr) => ({
            runId: tr.getAttribute('data-row-key'),
            state: tr.querySelector('[data-state]')?.getAttribute('data-state') ?? null,
            text: tr.textContent,
            link: tr.querySelector('a')?.getAttribute('href') ?? null,
        }));
    }, testId);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
    main().then(
        (code) => process.exit(code),
        (error) => {
            console.error(error);
            process.exit(1);
        },
    );
}
