// The micro-frontend build of the run panel (mfe/): mount(el, ctx) for DataHub's two slots, its unmount, the
// way DataHub's host unwraps the module, and the shipped mfe.config.yaml against DataHub's config rules.
import { act, fireEvent, screen, within } from '@testing-library/react';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { load } from 'js-yaml';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import * as mountModule from '../mfe/src/mount';
import { apiResolver, datasetLink, prefixFromPublicPath, urlEncodeUrn } from '../mfe/src/paths';
import { panelFor } from '../mfe/src/slotContext';
import { DATASET_URN, RUN_ID, apiError, fakeApi, json, runStatus, startedOk, targetOk } from './helpers/fakeApi';

const { mount } = mountModule;

async function flush(ms = 0) {
    await act(async () => {
        await vi.advanceTimersByTimeAsync(ms);
    });
}

const OTHER_URN = 'urn:li:dataset:(urn:li:dataPlatform:s3,bucket/raw/events,PROD)';
const row = (runId: string, datasetUrn: string, state: string, startTimeMs = 1764100001000) => ({
    runId,
    datasetUrn,
    state,
    startTimeMs,
    requestedBy: 'urn:li:corpuser:jdoe',
});

let el: HTMLDivElement;

beforeEach(() => {
    vi.useFakeTimers();
    el = document.createElement('div');
    document.body.appendChild(el);
});

afterEach(() => {
    el.remove();
    vi.useRealTimers();
});

describe('the module as DataHub loads it', () => {
    it('unwraps to the mount function: DataHub takes module.default of an ES module', () => {
        // __federation_method_unwrapDefault: `module.__esModule || module[Symbol.toStringTag] === 'Module'` -> default
        const ns = mountModule as unknown as { default?: unknown; [Symbol.toStringTag]?: string };
        expect(ns[Symbol.toStringTag]).toBe('Module');
        expect(ns.default).toBe(mount);
        expect(typeof ns.default).toBe('function');
    });

    it('picks the panel from the slot context', () => {
        expect(panelFor({ slot: 'entity.detail.tab', contractVersion: '1.0.0', entity: { urn: DATASET_URN, type: 'DATASET' } })).toEqual({
            kind: 'dataset',
            datasetUrn: DATASET_URN,
            entityType: 'DATASET',
        });
        expect(panelFor({ slot: 'nav.page', contractVersion: '1.0.0' })).toEqual({ kind: 'runs' });
        // Hosts from before slots call mount(el) for a nav page.
        expect(panelFor(undefined)).toEqual({ kind: 'runs' });
        expect(panelFor(null)).toEqual({ kind: 'runs' });
    });

    it('finds the api and DataHub next to where the bundle was loaded from', () => {
        expect(prefixFromPublicPath('https://datahub.example.com/api/ingestion/mfe/')).toBe('https://datahub.example.com');
        expect(prefixFromPublicPath('https://example.com/datahub/api/ingestion/mfe/')).toBe('https://example.com/datahub');
        expect(prefixFromPublicPath('/api/ingestion/mfe/')).toBe('');
        expect(prefixFromPublicPath('https://cdn.example.com/bundles/')).toBe('');
        expect(prefixFromPublicPath(undefined)).toBe('');
        expect(apiResolver('/datahub')('/api/ingestion/run')).toBe('/datahub/api/ingestion/run');
    });

    it('links datasets the way DataHub encodes URNs in paths', () => {
        expect(urlEncodeUrn(OTHER_URN)).toBe('urn:li:dataset:(urn:li:dataPlatform:s3,bucket%2Fraw%2Fevents,PROD)');
        expect(urlEncodeUrn('urn:li:dataset:(urn:li:dataPlatform:x,a%b?c#d[e],PROD)')).toBe(
            'urn:li:dataset:(urn:li:dataPlatform:x,a{{encoded_percent}}b%3Fc%23d%5Be%5D,PROD)',
        );
        expect(datasetLink('/datahub', DATASET_URN)).toBe(`/datahub/dataset/${DATASET_URN}`);
    });
});

describe('entity.detail.tab: the dataset run panel', () => {
    const ctx = { slot: 'entity.detail.tab', contractVersion: '1.0.0', entity: { urn: DATASET_URN, type: 'DATASET' } };

    it('offers Run with upstream (the shared dialog): the plan under the api prefix, a parent run with its children', async () => {
        const UP = 'urn:li:dataset:(urn:li:dataPlatform:s3,raw.orders,PROD)';
        const plan = {
            datasetUrn: DATASET_URN,
            maxDepth: 3,
            waves: [[{ datasetUrn: UP, name: 'raw.orders' }], [{ datasetUrn: DATASET_URN, name: 'analytics.orders' }]],
            skipped: [],
            runs: 2,
        };
        const api = fakeApi({
            targets: [targetOk],
            plan: [json(200, plan)],
            run: [json(202, { runId: RUN_ID, status: 'started', message: '2 runs in 2 waves requested', plan })],
            runs: [
                runStatus('running', {
                    children: [
                        { runId: `${RUN_ID}-up-a`, datasetUrn: UP, wave: 0, status: 'RUNNING' },
                        { runId: `${RUN_ID}-up-b`, datasetUrn: DATASET_URN, wave: 1, status: 'PENDING' },
                    ],
                }),
            ],
            list: [json(200, { runs: [] })],
        });
        act(() => {
            mount(el, ctx, { prefix: '/datahub', fetchImpl: api.fetchImpl });
        });
        await flush();
        const panel = within(el).getByTestId('lambda-trigger-dataset-panel');
        fireEvent.click(within(panel).getByTestId('run-ingestion-button'));
        await flush();
        const dialog = screen.getByRole('dialog', { name: 'Run ingestion' });
        fireEvent.click(within(dialog).getByRole('checkbox', { name: 'Run with upstream' }));
        await flush();
        expect(api.callsTo('plan')[0].url).toBe('/datahub/api/ingestion/plan');
        expect(within(dialog).getByTestId('upstream-plan-summary')).toHaveTextContent('2 runs in 2 waves');
        fireEvent.click(within(dialog).getByRole('button', { name: 'Run all 2' }));
        await flush(1000);
        expect(api.callsTo('run')[0].body).toEqual({ datasetUrn: DATASET_URN, withUpstream: true, maxDepth: 3 });
        expect(within(panel).getByRole('button', { name: 'Upstream runs (0/2)' })).toBeInTheDocument();
    });

    it('draws the same Run ingestion button, runs, follows to success and refreshes the last runs', async () => {
        const api = fakeApi({
            targets: [targetOk],
            run: [startedOk],
            runs: [runStatus('running'), runStatus('succeeded', { durationMs: 3000 })],
            list: [
                json(200, { runs: [row('old', DATASET_URN, 'failed'), row('x', OTHER_URN, 'running')] }),
                json(200, { runs: [row(RUN_ID, DATASET_URN, 'running'), row('old', DATASET_URN, 'failed')] }),
                json(200, { runs: [row(RUN_ID, DATASET_URN, 'succeeded'), row('old', DATASET_URN, 'failed')] }),
            ],
        });
        let cleanup: () => void = () => undefined;
        act(() => {
            cleanup = mount(el, ctx, { prefix: '/datahub', fetchImpl: api.fetchImpl });
        });
        await flush();
        expect(api.callsTo('targets')[0].url).toBe(`/datahub/api/ingestion/targets?datasetUrn=${encodeURIComponent(DATASET_URN)}`);
        expect(api.callsTo('list')[0].url).toBe('/datahub/api/ingestion/runs?limit=100');
        const panel = within(el).getByTestId('lambda-trigger-dataset-panel');
        // Only this dataset's runs.
        expect(within(panel).getByTestId('lambda-trigger-dataset-runs').querySelectorAll('tr.ant-table-row')).toHaveLength(1);

        fireEvent.click(within(panel).getByTestId('run-ingestion-button'));
        await flush();
        const dialog = screen.getByRole('dialog', { name: 'Run ingestion' });
        fireEvent.change(within(dialog).getByLabelText('Reason (optional)'), { target: { value: 'from the tab' } });
        fireEvent.click(within(dialog).getByRole('button', { name: 'Run' }));
        await flush();
        expect(api.callsTo('run')[0].body).toEqual({ datasetUrn: DATASET_URN, reason: 'from the tab' });
        await flush(1000);
        await flush(2000);
        expect(within(panel).getByTestId('run-ingestion')).toHaveAttribute('data-phase', 'succeeded');
        // Listed again when the run started following and when it ended.
        expect(api.callsTo('list')).toHaveLength(3);
        const rows = within(panel).getByTestId('lambda-trigger-dataset-runs').querySelectorAll('tr.ant-table-row');
        expect(rows).toHaveLength(2);
        expect(rows[0].getAttribute('data-row-key')).toBe(RUN_ID);
        expect(rows[0].querySelector('[data-state]')?.getAttribute('data-state')).toBe('succeeded');
        act(() => cleanup());
    });

    it('draws the parameter form in the panel and sends its values', async () => {
        const api = fakeApi({
            targets: [
                json(200, {
                    datasetUrn: DATASET_URN,
                    available: true,
                    canRun: true,
                    label: 'Orders nightly load',
                    parameters: {
                        type: 'object',
                        properties: {
                            day: { type: 'string', format: 'date', title: 'Day' },
                            full: { type: 'boolean', title: 'Full reload', default: false },
                        },
                        required: ['day'],
                    },
                }),
            ],
            run: [startedOk],
            runs: [runStatus('running')],
            list: [json(200, { runs: [] })],
        });
        let cleanup: () => void = () => undefined;
        act(() => {
            cleanup = mount(el, ctx, { prefix: '/datahub', fetchImpl: api.fetchImpl });
        });
        await flush();
        fireEvent.click(within(el).getByTestId('run-ingestion-button'));
        await flush();
        const dialog = within(screen.getByRole('dialog', { name: 'Run ingestion' }));
        expect(dialog.getByTestId('run-parameters')).toBeInTheDocument();
        fireEvent.change(dialog.getByLabelText('Day'), { target: { value: '2026-04-01' } });
        fireEvent.click(dialog.getByRole('switch'));
        fireEvent.click(dialog.getByRole('button', { name: 'Run' }));
        await flush();
        expect(api.callsTo('run')[0].body).toEqual({ datasetUrn: DATASET_URN, parameters: { day: '2026-04-01', full: true } });
        act(() => cleanup());
    });

    it('says so for a dataset without a target, and hides the history on an api without the run list', async () => {
        const api = fakeApi({
            targets: [json(200, { datasetUrn: DATASET_URN, available: false, canRun: false, label: null })],
            list: [apiError(404, 'not_found', 'Not Found')],
        });
        act(() => {
            mount(el, ctx, { prefix: '', fetchImpl: api.fetchImpl });
        });
        await flush();
        expect(within(el).getByTestId('lambda-trigger-no-target')).toHaveTextContent(
            'No ingestion job is set up for this dataset, or you may not run it.',
        );
        expect(within(el).queryByText('Last runs')).toBeNull();
        expect(within(el).queryByTestId('run-ingestion-button')).toBeNull();
    });

    it('shows only a note on an entity that is not a dataset', async () => {
        const api = fakeApi({});
        act(() => {
            mount(el, { slot: 'entity.detail.tab', entity: { urn: 'urn:li:chart:(looker,1)', type: 'CHART' } }, { fetchImpl: api.fetchImpl });
        });
        await flush();
        expect(el).toHaveTextContent('Ingestion runs are available on dataset pages only.');
        expect(api.calls).toHaveLength(0);
    });

    it('cleanup unmounts everything: no node left, no poll, no toast, even mid-run with a dialog open', async () => {
        const api = fakeApi({
            targets: [targetOk],
            run: [startedOk],
            runs: [runStatus('running')],
            list: [json(200, { runs: [] })],
        });
        let cleanup: () => void = () => undefined;
        act(() => {
            cleanup = mount(el, ctx, { fetchImpl: api.fetchImpl });
        });
        await flush();
        fireEvent.click(within(el).getByTestId('run-ingestion-button'));
        await flush();
        fireEvent.click(within(screen.getByRole('dialog', { name: 'Run ingestion' })).getByRole('button', { name: 'Run' }));
        await flush(1000);
        fireEvent.click(within(el).getByTestId('run-ingestion-cancel'));
        await flush();
        expect(screen.getByRole('dialog', { name: 'Cancel ingestion run' })).toBeInTheDocument();
        const calls = api.calls.length;
        act(() => cleanup());
        expect(el.childElementCount).toBe(0);
        expect(document.querySelectorAll('.lambda-trigger-mfe')).toHaveLength(0);
        expect(document.querySelectorAll('.ant-modal-root')).toHaveLength(0);
        await flush(120000);
        expect(api.calls.length).toBe(calls);
        act(() => cleanup()); // a second call is harmless
    });
});

describe('nav.page: Lambda runs', () => {
    it('lists recent runs with their state and a link to each dataset, refreshing while one is active', async () => {
        const api = fakeApi({
            list: [
                json(200, { runs: [row('r2', OTHER_URN, 'running'), row('r1', DATASET_URN, 'succeeded')] }),
                json(200, { runs: [row('r2', OTHER_URN, 'cancelled'), row('r1', DATASET_URN, 'succeeded')] }),
            ],
        });
        let cleanup: () => void = () => undefined;
        act(() => {
            cleanup = mount(el, { slot: 'nav.page', contractVersion: '1.0.0' }, { prefix: '/datahub', fetchImpl: api.fetchImpl });
        });
        await flush();
        expect(within(el).getByRole('heading', { name: 'Lambda runs' })).toBeInTheDocument();
        expect(api.callsTo('list')[0].url).toBe('/datahub/api/ingestion/runs?limit=50');
        const table = within(el).getByTestId('lambda-trigger-runs');
        let rows = table.querySelectorAll('tr.ant-table-row');
        expect(Array.from(rows).map((r) => r.getAttribute('data-row-key'))).toEqual(['r2', 'r1']);
        const link = rows[0].querySelector('a')!;
        expect(link).toHaveTextContent('bucket/raw/events');
        expect(link.getAttribute('href')).toBe('/datahub/dataset/urn:li:dataset:(urn:li:dataPlatform:s3,bucket%2Fraw%2Fevents,PROD)');
        expect(rows[0].querySelector('[data-state]')).toHaveTextContent('Running');
        expect(rows[0]).toHaveTextContent('jdoe');
        // Nothing about AWS is on the page.
        expect(el.textContent).not.toMatch(/arn:aws|lambda:|states:/i);

        await flush(10000); // one run was active: refreshed
        rows = within(el).getByTestId('lambda-trigger-runs').querySelectorAll('tr.ant-table-row');
        expect(rows[0].querySelector('[data-state]')).toHaveTextContent('Cancelled');
        await flush(60000); // none active any more: no more refreshes
        expect(api.callsTo('list')).toHaveLength(2);

        fireEvent.click(within(el).getByTestId('lambda-trigger-refresh'));
        await flush();
        expect(api.callsTo('list')).toHaveLength(3);
        act(() => cleanup());
        expect(el.childElementCount).toBe(0);
    });

    it('mounts the page for a host that passes no context', async () => {
        const api = fakeApi({ list: [json(200, { runs: [] })] });
        act(() => {
            mount(el, undefined, { fetchImpl: api.fetchImpl });
        });
        await flush();
        expect(within(el).getByText('No runs yet.')).toBeInTheDocument();
    });

    it.each([
        [apiError(404, 'not_found', 'Not Found'), 'This version of the ingestion api does not list runs.'],
        [apiError(403, 'forbidden', 'Not for you'), 'You are not allowed to run this ingestion: Not for you'],
        [apiError(503, 'datahub_unavailable', 'DataHub did not answer'), 'Could not load the runs: DataHub did not answer'],
    ])('explains a list it cannot show (%#)', async (reply, text) => {
        const api = fakeApi({ list: [reply] });
        act(() => {
            mount(el, { slot: 'nav.page' }, { fetchImpl: api.fetchImpl });
        });
        await flush();
        expect(within(el).getByTestId('lambda-trigger-runs-error')).toHaveTextContent(text);
    });

    it('cleanup stops the refresh timer and aborts a pending load', async () => {
        const api = fakeApi({ list: [json(200, { runs: [row('r2', OTHER_URN, 'running')] }), 'hang'] });
        let cleanup: () => void = () => undefined;
        act(() => {
            cleanup = mount(el, { slot: 'nav.page' }, { fetchImpl: api.fetchImpl });
        });
        await flush(10000);
        expect(api.callsTo('list')).toHaveLength(2); // the second is pending
        act(() => cleanup());
        await flush(120000);
        expect(api.callsTo('list')).toHaveLength(2);
        expect(el.childElementCount).toBe(0);
    });
});

describe('mfe.config.yaml', () => {
    // The rules of DataHub's loader (datahub-web-react/src/app/mfeframework/mfeConfigLoader.tsx and the slot
    // placement checks): required fields, `module` as "<remote>/<exposed>", `path` starting with "/", boolean flags,
    // a non-empty navIcon; a placement needs a slot, a contract version the host has a builder for, and an explicit
    // entityTypes opt-in for entity tabs.
    const config = load(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'mfe', 'mfe.config.yaml'), 'utf8')) as {
        microFrontends: Array<Record<string, any>>;
    };

    it('has a nav page and a dataset tab, both valid for DataHub', () => {
        expect(Array.isArray(config.microFrontends)).toBe(true);
        const ids = config.microFrontends.map((m) => m.id);
        expect(new Set(ids).size).toBe(ids.length);
        for (const mfe of config.microFrontends) {
            for (const field of ['id', 'label', 'path', 'remoteEntry', 'module', 'flags', 'navIcon']) {
                expect(mfe[field], `${mfe.id}.${field}`).toBeDefined();
            }
            expect(mfe.path.startsWith('/')).toBe(true);
            expect(typeof mfe.flags.enabled).toBe('boolean');
            expect(typeof mfe.flags.showInNav).toBe('boolean');
            expect(mfe.navIcon.length).toBeGreaterThan(0);
            // The remote name is the webpack container's global, the exposed module is ./mount.
            expect(mfe.module).toBe('lambdaTriggerMFE/mount');
            expect(mfe.remoteEntry).toBe('/api/ingestion/mfe/remoteEntry.js');
        }
        const nav = config.microFrontends.find((m) => !m.placement)!;
        expect(nav).toMatchObject({ label: 'Lambda runs', flags: { enabled: true, showInNav: true } });
        const tab = config.microFrontends.find((m) => m.placement)!;
        expect(tab.placement).toEqual({ slot: 'entity.detail.tab', contractVersion: '1.0.0', entityTypes: ['dataset'] });
        expect(tab.flags).toEqual({ enabled: true, showInNav: false });
    });

    it('names the same remote the build produces', async () => {
        // @ts-expect-error -- plain .mjs, no type declarations
        const { REMOTE_NAME } = await import('../mfe/build.mjs');
        expect(REMOTE_NAME).toBe('lambdaTriggerMFE');
    });
});
