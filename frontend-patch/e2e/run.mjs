// Browser check of the button against a running api: open the page, click "Run ingestion", confirm, wait for the
// run's final state, save a screenshot. Uses playwright-core with the system Chromium: nothing is downloaded.
//
//   DATASET_URN=urn:li:dataset:(...)      dataset to run (required)
//   E2E_SCREENSHOT=/path/shot.png         where to save the screenshot (required)
//   API_URL=http://127.0.0.1:8000         api to proxy to; the page server is started here (or:)
//   E2E_BASE_URL=http://127.0.0.1:5173    an already running e2e/server.mjs
//   API_BEARER_TOKEN=...                  optional, see server.mjs
//   E2E_REASON="..."                      reason typed in the dialog (default: "e2e check")
//   E2E_EXPECT=succeeded                  final phase to wait for: succeeded (default), failed, cancelled or hidden
//                                         (hidden: the targets call answers and no button is drawn; cancelled:
//                                         once "Cancel run" is offered it is clicked and confirmed)
//   E2E_TIMEOUT_MS=120000                 how long to wait for it
//   E2E_DIALOG_SCREENSHOT=/path/dlg.png   optional: also a screenshot of the filled-in confirmation dialog
//   E2E_PARAMS='{"start":"2026-01-31"}'   optional: values typed into the dialog's parameter form, by name (a
//                                         select is chosen, a switch clicked to the given boolean, any other field filled)
//   E2E_UPSTREAM=1                        optional: check "Run with upstream", wait for the plan and record it
//                                         (`plan`: summary, waves, skipped as shown; `planAnswer`: the api's JSON), run
//                                         it, and at the end record each child's status by wave (`children`) from the
//                                         "Upstream runs" dialog (`E2E_PROGRESS_SCREENSHOT`: a picture of it)
//   E2E_DEPTH=2                           optional, with E2E_UPSTREAM: typed into "Levels upstream" first
//   CHROMIUM_PATH=/usr/bin/chromium       browser binary
//
// Prints one JSON line {"ok", "phase", "status", "screenshot", "runRequests", "runBodies", "targets", "error"?} and exits
// 0 when the expected phase was reached, 1 otherwise (the screenshot is saved in both cases when the page loaded).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { startServer } from './server.mjs';

export const CHROMIUM_ARGS = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
];

function required(name) {
    const value = process.env[name];
    if (!value) {
        console.error(`error: ${name} is required`);
        process.exit(2);
    }
    return value;
}

async function main() {
    const datasetUrn = required('DATASET_URN');
    const screenshot = resolve(required('E2E_SCREENSHOT'));
    const expect = process.env.E2E_EXPECT ?? 'succeeded';
    const timeout = Number(process.env.E2E_TIMEOUT_MS ?? 120000);
    const reason = process.env.E2E_REASON ?? 'e2e check';

    let server;
    let baseUrl = process.env.E2E_BASE_URL;
    if (!baseUrl) {
        server = await startServer({ apiUrl: required('API_URL'), bearerToken: process.env.API_BEARER_TOKEN });
        baseUrl = server.url;
    }

    const userDataDir = mkdtempSync(join(tmpdir(), 'run-ingestion-e2e-profile-'));
    let context;
    const upstream = !!process.env.E2E_UPSTREAM;
    const result = { ok: false, phase: null, status: null, screenshot: null, runRequests: 0, runBodies: [] };
    try {
        context = await chromium.launchPersistentContext(userDataDir, {
            executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
            headless: true,
            args: CHROMIUM_ARGS,
            // A parameter form makes the dialog taller: room for all of it in the picture.
            viewport: { width: 1100, height: process.env.E2E_PARAMS || upstream ? 780 : 420 },
        });
        const page = context.pages()[0] ?? (await context.newPage());
        page.on('request', (request) => {
            if (new URL(request.url()).pathname === '/api/ingestion/run') {
                result.runRequests += 1;
                try {
                    result.runBodies.push(JSON.parse(request.postData() ?? 'null'));
                } catch {
                    result.runBodies.push(null);
                }
            }
        });
        page.on('console', (msg) => {
            if (msg.type() === 'error') console.error(`[page] ${msg.text()}`);
        });

        const url = `${baseUrl.replace(/\/$/, '')}/?datasetUrn=${encodeURIComponent(datasetUrn)}`;
        const targets = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/ingestion/targets', {
            timeout: 30000,
        });
        await page.goto(url, { waitUntil: 'load' });
        const targetsResponse = await targets;
        result.targets = { status: targetsResponse.status(), body: await targetsResponse.json().catch(() => null) };

        if (expect === 'hidden') {
            await page.waitForTimeout(500);
            const drawn = await page.getByTestId('run-ingestion').count();
            result.phase = drawn ? await page.getByTestId('run-ingestion').getAttribute('data-phase') : 'hidden';
            result.ok = !drawn;
        } else {
            const button = page.getByTestId('run-ingestion-button');
            await button.waitFor({ state: 'visible', timeout: 10000 });
            await button.click();

            const dialog = page.getByRole('dialog', { name: 'Run ingestion' });
            await dialog.waitFor({ state: 'visible', timeout: 10000 });
            await dialog.getByLabel('Reason (optional)').fill(reason);
            const params = JSON.parse(process.env.E2E_PARAMS ?? '{}');
            for (const [name, value] of Object.entries(params)) {
                const field = dialog.getByTestId(`run-parameter-${name}`);
                const tag = await field.evaluate((el) => el.tagName.toLowerCase());
                const role = await field.getAttribute('role');
                if (tag === 'select') {
                    await field.selectOption(String(value));
                } else if (role === 'switch') {
                    if ((await field.getAttribute('aria-checked')) !== String(value)) await field.click();
                } else {
                    await field.fill(String(value));
                }
            }
            if (upstream) {
                const planAnswer = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/ingestion/plan', {
                    timeout: 30000,
                });
                await dialog.getByRole('checkbox', { name: 'Run with upstream' }).check();
                if (process.env.E2E_DEPTH) {
                    await planAnswer; // the default plan first, then the one for the typed depth
                    const nextAnswer = page.waitForResponse(
                        (r) => new URL(r.url()).pathname === '/api/ingestion/plan',
                        { timeout: 30000 },
                    );
                    await dialog.getByLabel('Levels upstream').fill(process.env.E2E_DEPTH);
                    const answer = await nextAnswer;
                    result.planAnswer = { status: answer.status(), body: await answer.json().catch(() => null) };
                } else {
                    const answer = await planAnswer;
                    result.planAnswer = { status: answer.status(), body: await answer.json().catch(() => null) };
                }
                const plan = dialog.getByTestId('upstream-plan');
                await plan.waitFor({ state: 'visible', timeout: 30000 });
                result.plan = {
                    summary: (await plan.getByTestId('upstream-plan-summary').textContent())?.trim(),
                    waves: (await plan.getByTestId('upstream-plan-wave').allTextContents()).map((t) => t.trim()),
                    skipped: (await plan.locator('[data-testid="upstream-plan-skipped"] li').allTextContents()).map((t) =>
                        t.trim(),
                    ),
                    runLabel: (await dialog.getByTestId('run-ingestion-confirm').textContent())?.trim(),
                };
            }
            result.parameterErrors = await dialog.getByRole('alert').allTextContents();
            if (process.env.E2E_DIALOG_SCREENSHOT) {
                const dialogShot = resolve(process.env.E2E_DIALOG_SCREENSHOT);
                mkdirSync(dirname(dialogShot), { recursive: true });
                await page.waitForTimeout(400); // opening animation
                await page.screenshot({ path: dialogShot });
                result.dialogScreenshot = dialogShot;
            }
            await dialog.getByTestId('run-ingestion-confirm').click();

            const root = page.getByTestId('run-ingestion');
            if (expect === 'cancelled') {
                const cancel = page.getByTestId('run-ingestion-cancel');
                await cancel.waitFor({ state: 'visible', timeout });
                await page.waitForFunction(
                    () => !document.querySelector('[data-testid="run-ingestion-cancel"]')?.hasAttribute('disabled'),
                    undefined,
                    { timeout, polling: 100 },
                );
                await cancel.click();
                const cancelDialog = page.getByRole('dialog', { name: 'Cancel ingestion run' });
                await cancelDialog.waitFor({ state: 'visible', timeout: 10000 });
                await cancelDialog.getByRole('button', { name: 'Cancel run' }).click();
                result.cancelRequests = 1;
            }
            await page.waitForFunction(
                () => {
                    const phase = document.querySelector('[data-testid="run-ingestion"]')?.getAttribute('data-phase');
                    return ['succeeded', 'failed', 'cancelled', 'lost', 'idle'].includes(phase ?? '');
                },
                undefined,
                { timeout, polling: 250 },
            );
            result.phase = await root.getAttribute('data-phase');
            result.status = (await page.getByTestId('run-ingestion-status').textContent())?.trim() ?? null;
            result.ok = result.phase === expect;
            if (upstream) {
                // The parent's children by wave, as the "Upstream runs" dialog shows them at the end.
                const open = page.getByTestId('run-ingestion-progress');
                if (await open.count()) {
                    await open.click();
                    const progress = page.getByRole('dialog', { name: 'Run with upstream' });
                    await progress.waitFor({ state: 'visible', timeout: 10000 });
                    result.children = await progress.getByTestId('upstream-progress-wave').evaluateAll((waves) =>
                        waves.map((wave) => ({
                            wave: wave.firstElementChild?.textContent?.trim() ?? '',
                            children: Array.from(wave.querySelectorAll('[data-testid="upstream-child"]')).map((li) => ({
                                name: li.firstElementChild?.textContent?.trim() ?? '',
                                status: li.getAttribute('data-status'),
                                state: li.getAttribute('data-state'),
                                datasetUrn: li.getAttribute('title'),
                            })),
                        })),
                    );
                    if (process.env.E2E_PROGRESS_SCREENSHOT) {
                        const shot = resolve(process.env.E2E_PROGRESS_SCREENSHOT);
                        mkdirSync(dirname(shot), { recursive: true });
                        await page.waitForTimeout(400);
                        await page.screenshot({ path: shot });
                        result.progressScreenshot = shot;
                    }
                    await progress.getByTestId('upstream-progress-close').click();
                } else {
                    result.children = null;
                }
                result.ok = result.ok && Array.isArray(result.children) && result.children.length > 0;
            }
            // Let the toast animate in before the picture.
            await page.waitForTimeout(400);
        }
    } catch (error) {
        result.error = error instanceof Error ? error.message.split('\n')[0] : String(error);
    } finally {
        if (context) {
            try {
                const page = context.pages()[0];
                if (page) {
                    mkdirSync(dirname(screenshot), { recursive: true });
                    await page.screenshot({ path: screenshot, fullPage: true });
                    result.screenshot = screenshot;
                }
            } catch (error) {
                result.screenshotError = String(error);
            }
            await context.close().catch(() => undefined);
        }
        rmSync(userDataDir, { recursive: true, force: true });
        if (server) await server.close();
    }
    console.log(JSON.stringify(result));
    return result.ok ? 0 : 1;
}

// Run only as a script: mfe/host/run.mjs imports CHROMIUM_ARGS from here.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
    main().then(
        (code) => process.exit(code),
        (error) => {
            console.error(error);
            process.exit(1);
        },
    );
}
