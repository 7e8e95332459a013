// "Run with upstream" in the Run ingestion dialog (issue 21, item 5): the plan is fetched and shown before the user
// confirms, Run starts that plan as one parent run, the parent's children are shown by wave while it runs, Cancel
// works on the parent, and errors (including an api without the planner) are told to the user.
import { act, fireEvent, render, screen, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { createIngestionApiClient } from '../src/api';
import { RunIngestionButton } from '../src/RunIngestionButton';
import type { ToastKind } from '../src/toast';
import { childProgress, childStatusLabel, childrenByWave, describeSkipReason, planNames, planRunCount } from '../src/upstream';
import { isPlanUnsupported } from '../src/useUpstreamPlan';
import { IngestionApiError } from '../src/api';
import { DATASET_URN, RUN_ID, apiError, cancellingOk, fakeApi, json, runStatus, startedOk, targetOk } from './helpers/fakeApi';

type Api = ReturnType<typeof fakeApi>;

const RAW = 'urn:li:dataset:(urn:li:dataPlatform:s3,raw.orders,PROD)';
const STAGE = 'urn:li:dataset:(urn:li:dataPlatform:hive,staging.orders,PROD)';
const FX = 'urn:li:dataset:(urn:li:dataPlatform:hive,ref.fx_rates,PROD)';
const FAR = 'urn:li:dataset:(urn:li:dataPlatform:s3,landing.orders_dump,PROD)';
const VENDOR = 'urn:li:dataset:(urn:li:dataPlatform:kafka,vendor.feed,PROD)';

const PLAN = {
    datasetUrn: DATASET_URN,
    maxDepth: 2,
    waves: [
        [
            { datasetUrn: RAW, name: 'Raw orders' },
            { datasetUrn: FX, name: 'FX rates' },
        ],
        [{ datasetUrn: STAGE, name: 'Staging orders' }],
        [{ datasetUrn: DATASET_URN, name: 'Orders' }],
    ],
    skipped: [
        { datasetUrn: VENDOR, reason: 'unmapped' },
        { datasetUrn: FAR, reason: 'too_deep' },
    ],
    runs: 4,
};

const planOk = json(200, PLAN);

function child(datasetUrn: string, wave: number, status: string, runId?: string) {
    return { runId: runId ?? `child-${wave}-${datasetUrn.length}`, datasetUrn, wave, status };
}

function parent(state: string, children: ReturnType<typeof child>[], extra: Record<string, unknown> = {}) {
    return runStatus(state, { children, ...extra });
}

const startedWithPlan = json(202, { runId: RUN_ID, status: 'started', message: 'Run with upstream requested', plan: PLAN });

async function flush(ms = 0) {
    await act(async () => {
        await vi.advanceTimersByTimeAsync(ms);
    });
}

function setup(api: Api) {
    const toast = vi.fn<(kind: ToastKind, content: string, seconds: number) => void>();
    const utils = render(<RunIngestionButton datasetUrn={DATASET_URN} fetchImpl={api.fetchImpl} toast={toast} />);
    return { ...utils, toast };
}

const root = () => screen.getByTestId('run-ingestion');
const statusLine = () => screen.getByTestId('run-ingestion-status');

async function openDialog() {
    await flush();
    fireEvent.click(screen.getByTestId('run-ingestion-button'));
    await flush();
    return screen.getByRole('dialog', { name: 'Run ingestion' });
}

async function checkUpstream(dialog: HTMLElement) {
    fireEvent.click(within(dialog).getByRole('checkbox', { name: 'Run with upstream' }));
    await flush();
}

const okButton = (dialog: HTMLElement) => within(dialog).getByTestId('run-ingestion-confirm');

beforeEach(() => {
    vi.useFakeTimers();
});

afterEach(() => {
    vi.useRealTimers();
});

describe('the plan in the dialog', () => {
    it('is fetched when "Run with upstream" is checked and shows waves, names, skipped with reasons and the count', async () => {
        const api = fakeApi({ targets: [targetOk], plan: [planOk] });
        setup(api);
        const dialog = await openDialog();
        // Off by default: nothing is planned until asked.
        expect(within(dialog).getByRole('checkbox', { name: 'Run with upstream' })).not.toBeChecked();
        expect(api.callsTo('plan')).toHaveLength(0);

        await checkUpstream(dialog);
        const calls = api.callsTo('plan');
        expect(calls).toHaveLength(1);
        expect(calls[0].method).toBe('POST');
        expect(calls[0].body).toEqual({ datasetUrn: DATASET_URN });
        expect(calls[0].credentials).toBe('include');

        const plan = within(dialog).getByTestId('upstream-plan');
        expect(within(plan).getByTestId('upstream-plan-summary')).toHaveTextContent(
            '4 runs in 3 waves (up to 2 levels upstream)',
        );
        // The plan is a labelled region: a screen reader announces its summary.
        expect(within(dialog).getByRole('region', { name: /4 runs in 3 waves/ })).toBe(plan);
        const waves = within(plan).getAllByTestId('upstream-plan-wave').map((li) => li.textContent);
        expect(waves).toEqual(['Wave 1: Raw orders, FX rates', 'Wave 2: Staging orders', 'Wave 3 (this dataset): Orders']);
        const skipped = within(within(plan).getByTestId('upstream-plan-skipped'))
            .getAllByRole('listitem')
            .map((li) => li.textContent);
        // No name from the api: the name inside the URN.
        expect(skipped).toEqual([
            'vendor.feed: no ingestion job is mapped for it',
            'landing.orders_dump: further upstream than the depth limit',
        ]);
        expect(okButton(dialog)).toHaveTextContent('Run all 4');
        expect(okButton(dialog)).toBeEnabled();
        // Nothing was started by planning.
        expect(api.callsTo('run')).toHaveLength(0);
    });

    it('Run is disabled while the plan loads, and unchecking drops the plan', async () => {
        const api = fakeApi({ targets: [targetOk], plan: ['hang'] });
        setup(api);
        const dialog = await openDialog();
        await checkUpstream(dialog);
        expect(within(dialog).getByTestId('upstream-plan-loading')).toHaveTextContent('Planning the upstream runs…');
        expect(okButton(dialog)).toBeDisabled();
        fireEvent.click(okButton(dialog));
        await flush();
        expect(api.callsTo('run')).toHaveLength(0);

        fireEvent.click(within(dialog).getByRole('checkbox', { name: 'Run with upstream' }));
        await flush();
        expect(within(dialog).queryByTestId('upstream-plan-loading')).toBeNull();
        expect(okButton(dialog)).toBeEnabled();
        expect(okButton(dialog)).toHaveTextContent(/^Run$/);
    });

    it('a new depth asks for a new plan with maxDepth', async () => {
        const deeper = json(200, { ...PLAN, maxDepth: 3, runs: 5, skipped: [], waves: [[{ datasetUrn: FAR }], ...PLAN.waves] });
        const api = fakeApi({ targets: [targetOk], plan: [planOk, deeper] });
        setup(api);
        const dialog = await openDialog();
        await checkUpstream(dialog);
        const depth = within(dialog).getByLabelText('Levels upstream');
        expect(depth).toHaveValue('2');
        fireEvent.change(depth, { target: { value: '3' } });
        await flush();
        expect(api.callsTo('plan').map((c) => c.body)).toEqual([
            { datasetUrn: DATASET_URN },
            { datasetUrn: DATASET_URN, maxDepth: 3 },
        ]);
        expect(within(dialog).getByTestId('upstream-plan-summary')).toHaveTextContent('5 runs in 4 waves');
        expect(okButton(dialog)).toHaveTextContent('Run all 5');
    });

    it('is off again the next time the dialog opens', async () => {
        const api = fakeApi({ targets: [targetOk], plan: [planOk] });
        setup(api);
        let dialog = await openDialog();
        await checkUpstream(dialog);
        fireEvent.click(within(dialog).getByRole('button', { name: 'Cancel' }));
        await flush(500);
        dialog = await openDialog();
        expect(within(dialog).getByRole('checkbox', { name: 'Run with upstream' })).not.toBeChecked();
        expect(within(dialog).queryByTestId('upstream-plan')).toBeNull();
    });
});

describe('confirming and following the parent run', () => {
    it('posts the run with withUpstream and the plan depth, then shows each child by wave as the parent runs', async () => {
        const api = fakeApi({
            targets: [targetOk],
            plan: [planOk],
            run: [startedWithPlan],
            runs: [
                parent('running', [
                    child(RAW, 0, 'RUNNING'),
                    child(FX, 0, 'SUCCESS'),
                    child(STAGE, 1, 'PENDING'),
                    child(DATASET_URN, 2, 'PENDING'),
                ]),
                parent('running', [
                    child(RAW, 0, 'SUCCESS'),
                    child(FX, 0, 'SUCCESS'),
                    child(STAGE, 1, 'RUNNING'),
                    child(DATASET_URN, 2, 'PENDING'),
                ]),
                parent('succeeded', [
                    child(RAW, 0, 'SUCCESS'),
                    child(FX, 0, 'SUCCESS'),
                    child(STAGE, 1, 'SUCCESS'),
                    child(DATASET_URN, 2, 'SUCCESS'),
                ]),
            ],
        });
        const { toast } = setup(api);
        const dialog = await openDialog();
        fireEvent.change(within(dialog).getByLabelText('Reason (optional)'), { target: { value: 'month end' } });
        await checkUpstream(dialog);
        fireEvent.click(okButton(dialog));
        await flush();

        expect(api.callsTo('run')).toHaveLength(1);
        expect(api.callsTo('run')[0].body).toEqual({
            datasetUrn: DATASET_URN,
            reason: 'month end',
            withUpstream: true,
            maxDepth: 2,
        });
        expect(toast).toHaveBeenCalledWith('info', 'Ingestion run with upstream requested (Orders nightly load).', 3);
        expect(root()).toHaveAttribute('data-phase', 'following');

        await flush(1000);
        // The parent run is what is followed.
        expect(api.callsTo('runs').map((c) => c.url)).toEqual([`/api/ingestion/runs/${RUN_ID}`]);
        expect(statusLine()).toHaveTextContent('Running… · 1 of 4 runs done');
        const progressButton = screen.getByRole('button', { name: 'Upstream runs (1/4)' });
        fireEvent.click(progressButton);
        await flush();
        const progress = screen.getByRole('dialog', { name: 'Run with upstream' });
        const rows = () =>
            within(progress)
                .getAllByTestId('upstream-child')
                .map((li) => `${li.closest('[data-testid="upstream-progress-wave"]')!.firstChild!.textContent} ${li.textContent}`);
        // Names from the plan; 0-based waves shown from 1.
        expect(rows()).toEqual([
            'Wave 1 Raw ordersRunning',
            'Wave 1 FX ratesSucceeded',
            'Wave 2 Staging ordersWaiting',
            'Wave 3 OrdersWaiting',
        ]);

        await flush(2000);
        expect(rows()).toEqual([
            'Wave 1 Raw ordersSucceeded',
            'Wave 1 FX ratesSucceeded',
            'Wave 2 Staging ordersRunning',
            'Wave 3 OrdersWaiting',
        ]);
        expect(within(progress).getByTestId('upstream-progress-status')).toHaveTextContent(
            'analytics.orders: Running… · 2 of 4 runs done',
        );

        await flush(4000);
        expect(root()).toHaveAttribute('data-phase', 'succeeded');
        expect(statusLine()).toHaveTextContent('Last run succeeded · 4 of 4 runs done');
        expect(within(progress).getAllByTestId('upstream-child').every((li) => li.dataset.state === 'succeeded')).toBe(true);
        expect(toast).toHaveBeenLastCalledWith('success', 'Ingestion run succeeded (Orders nightly load).', 3);
        fireEvent.click(within(progress).getByTestId('upstream-progress-close'));
        await flush(500);
        expect(screen.queryByRole('dialog', { name: 'Run with upstream' })).toBeNull();
        // The last run's children stay reachable after it ended.
        expect(screen.getByRole('button', { name: 'Upstream runs (4/4)' })).toBeInTheDocument();
    });

    it('a parent run found on page load shows its children by URN name (no plan on this page)', async () => {
        const api = fakeApi({
            targets: [
                json(200, {
                    ...(targetOk as { body: Record<string, unknown> }).body,
                    activeRun: { runId: RUN_ID, state: 'running', requestedBy: 'urn:li:corpuser:jdoe' },
                }),
            ],
            runs: [parent('running', [child(RAW, 1, 'FAILURE'), child(DATASET_URN, 2, 'CANCELLED')], { requestedBy: 'urn:li:corpuser:jdoe' })],
        });
        setup(api);
        await flush(1000);
        fireEvent.click(screen.getByRole('button', { name: 'Upstream runs (2/2)' }));
        await flush();
        const progress = screen.getByRole('dialog', { name: 'Run with upstream' });
        const waves = within(progress).getAllByTestId('upstream-progress-wave').map((li) => li.textContent);
        // 1-based numbering from the api is kept.
        expect(waves).toEqual(['Wave 1raw.ordersFailed', 'Wave 2analytics.ordersCancelled']);
    });

    it('a plain run (option off) sends no withUpstream and shows no progress entry', async () => {
        const api = fakeApi({ targets: [targetOk], run: [startedOk], runs: [runStatus('succeeded')] });
        setup(api);
        const dialog = await openDialog();
        fireEvent.click(okButton(dialog));
        await flush(1000);
        expect(api.callsTo('run')[0].body).toEqual({ datasetUrn: DATASET_URN });
        expect(api.callsTo('plan')).toHaveLength(0);
        expect(root()).toHaveAttribute('data-phase', 'succeeded');
        expect(screen.queryByTestId('run-ingestion-progress')).toBeNull();
    });
});

describe('a wave that fails', () => {
    it('ends the parent failed; later waves show Skipped', async () => {
        const api = fakeApi({
            targets: [targetOk],
            plan: [planOk],
            run: [startedWithPlan],
            runs: [
                parent(
                    'failed',
                    [child(RAW, 0, 'FAILURE'), child(FX, 0, 'SUCCESS'), child(STAGE, 1, 'SKIPPED'), child(DATASET_URN, 2, 'SKIPPED')],
                    { message: 'raw.orders ended FAILURE in wave 1; its dependents were skipped', cancellable: false },
                ),
            ],
        });
        const { toast } = setup(api);
        const dialog = await openDialog();
        await checkUpstream(dialog);
        fireEvent.click(okButton(dialog));
        await flush(1000);
        expect(root()).toHaveAttribute('data-phase', 'failed');
        expect(statusLine()).toHaveTextContent(
            'Last run failed: raw.orders ended FAILURE in wave 1; its dependents were skipped · 4 of 4 runs done',
        );
        expect(toast).toHaveBeenLastCalledWith(
            'error',
            'Ingestion run failed (Orders nightly load): raw.orders ended FAILURE in wave 1; its dependents were skipped',
            5,
        );
        fireEvent.click(screen.getByRole('button', { name: 'Upstream runs (4/4)' }));
        await flush();
        const progress = screen.getByRole('dialog', { name: 'Run with upstream' });
        expect(
            within(progress)
                .getAllByTestId('upstream-child')
                .map((li) => `${li.dataset.state}:${li.textContent}`),
        ).toEqual(['failed:Raw ordersFailed', 'succeeded:FX ratesSucceeded', 'skipped:Staging ordersSkipped', 'skipped:OrdersSkipped']);
        // No Cancel in the progress dialog once the parent ended.
        expect(within(progress).queryByRole('button', { name: 'Cancel run' })).toBeNull();
    });
});

describe('a target with parameters', () => {
    const SCHEMA = {
        type: 'object',
        properties: { start: { type: 'string', format: 'date', title: 'First day' } },
        required: ['start'],
    };

    it('with upstream the form is replaced by a note and no parameters are sent (the api refuses them)', async () => {
        const api = fakeApi({
            targets: [json(200, { datasetUrn: DATASET_URN, available: true, canRun: true, label: 'L', parameters: SCHEMA })],
            plan: [planOk],
            run: [startedWithPlan],
            runs: ['hang'],
        });
        setup(api);
        const dialog = await openDialog();
        expect(within(dialog).getByTestId('run-parameters')).toBeInTheDocument();
        await checkUpstream(dialog);
        expect(within(dialog).queryByTestId('run-parameters')).toBeNull();
        expect(within(dialog).getByTestId('upstream-no-parameters')).toHaveTextContent(
            'With upstream, every dataset runs its job with its default parameters.',
        );
        // The required "start" is empty, yet the upstream run goes: its targets run with their defaults.
        fireEvent.click(okButton(dialog));
        await flush();
        expect(api.callsTo('run')[0].body).toEqual({ datasetUrn: DATASET_URN, withUpstream: true, maxDepth: 2 });
    });
});

describe('cancel', () => {
    it('cancels the parent run, says its upstream runs stop too, and shows the children cancelled', async () => {
        const running = [child(RAW, 0, 'RUNNING'), child(STAGE, 1, 'PENDING'), child(DATASET_URN, 2, 'PENDING')];
        const api = fakeApi({
            targets: [targetOk],
            plan: [planOk],
            run: [startedWithPlan],
            runs: [
                parent('running', running),
                parent('running', running),
                parent('cancelled', [child(RAW, 0, 'CANCELLED'), child(STAGE, 1, 'CANCELLED'), child(DATASET_URN, 2, 'CANCELLED')], {
                    cancellable: false,
                }),
            ],
            cancel: [cancellingOk],
        });
        const { toast } = setup(api);
        const dialog = await openDialog();
        await checkUpstream(dialog);
        fireEvent.click(okButton(dialog));
        await flush(1000);

        // From the progress dialog: its Cancel run hands over to the usual confirmation.
        fireEvent.click(screen.getByRole('button', { name: 'Upstream runs (0/3)' }));
        await flush();
        const progress = screen.getByRole('dialog', { name: 'Run with upstream' });
        fireEvent.click(within(progress).getByRole('button', { name: 'Cancel run' }));
        await flush(500);
        const confirmCancel = screen.getByRole('dialog', { name: 'Cancel ingestion run' });
        expect(confirmCancel).toHaveTextContent('Stop the ingestion run of analytics.orders with Orders nightly load and its upstream runs?');
        expect(confirmCancel).toHaveTextContent('Runs not started yet will not start');
        fireEvent.click(within(confirmCancel).getByRole('button', { name: 'Cancel run' }));
        await flush();
        expect(api.callsTo('cancel').map((c) => [c.method, c.url])).toEqual([
            ['POST', `/api/ingestion/runs/${RUN_ID}/cancel`],
        ]);
        await flush(5000);
        expect(root()).toHaveAttribute('data-phase', 'cancelled');
        expect(toast).toHaveBeenCalledWith('warning', 'Ingestion run cancelled (Orders nightly load).', 5);
        fireEvent.click(screen.getByRole('button', { name: 'Upstream runs (3/3)' }));
        await flush();
        const after = screen.getByRole('dialog', { name: 'Run with upstream' });
        expect(within(after).getAllByTestId('upstream-child').map((li) => li.dataset.state)).toEqual([
            'cancelled',
            'cancelled',
            'cancelled',
        ]);
        // No Cancel run once the parent ended.
        expect(within(after).queryByRole('button', { name: 'Cancel run' })).toBeNull();
    });
});

describe('errors', () => {
    it('a plan error shows the server message; Run stays disabled until the option is turned off', async () => {
        const api = fakeApi({
            targets: [targetOk],
            plan: [apiError(400, 'invalid_request', 'maxDepth must be between 1 and 5')],
            run: [startedOk],
        });
        setup(api);
        const dialog = await openDialog();
        await checkUpstream(dialog);
        expect(within(dialog).getByRole('alert')).toHaveTextContent(
            'Could not plan the upstream runs: maxDepth must be between 1 and 5',
        );
        expect(okButton(dialog)).toBeDisabled();
        fireEvent.click(within(dialog).getByRole('checkbox', { name: 'Run with upstream' }));
        await flush();
        expect(within(dialog).queryByRole('alert')).toBeNull();
        fireEvent.click(okButton(dialog));
        await flush();
        expect(api.callsTo('run')[0].body).toEqual({ datasetUrn: DATASET_URN });
    });

    it('403 on the plan names the reason; 404 with a real code is an error, not "unsupported"', async () => {
        const api = fakeApi({
            targets: [targetOk],
            plan: [
                apiError(403, 'forbidden', 'not allowed to run staging.orders'),
                apiError(404, 'dataset_not_found', 'no such dataset in DataHub'),
            ],
        });
        setup(api);
        const dialog = await openDialog();
        await checkUpstream(dialog);
        expect(within(dialog).getByRole('alert')).toHaveTextContent(
            'You are not allowed to run this ingestion: not allowed to run staging.orders',
        );
        fireEvent.click(within(dialog).getByRole('checkbox', { name: 'Run with upstream' }));
        await flush();
        await checkUpstream(dialog);
        expect(within(dialog).getByRole('alert')).toHaveTextContent('Could not plan the upstream runs: no such dataset in DataHub');
        expect(within(dialog).getByRole('checkbox', { name: 'Run with upstream' })).toBeEnabled();
    });

    it('an api without /plan (404 not_found, 405): a clear message, the option disabled, Run runs this dataset only', async () => {
        for (const reply of [apiError(404, 'not_found', 'Not Found'), apiError(405, 'method_not_allowed', 'Method Not Allowed')]) {
            const api = fakeApi({ targets: [targetOk], plan: [reply], run: [startedOk], runs: ['hang'] });
            const { unmount } = setup(api);
            let dialog = await openDialog();
            await checkUpstream(dialog);
            expect(within(dialog).getByTestId('upstream-plan-unsupported')).toHaveTextContent(
                'This version of the ingestion api cannot run upstream datasets; only this dataset can be run.',
            );
            const box = within(dialog).getByRole('checkbox', { name: 'Run with upstream' });
            expect(box).toBeDisabled();
            expect(box).not.toBeChecked();
            expect(okButton(dialog)).toHaveTextContent(/^Run$/);
            fireEvent.click(within(dialog).getByRole('button', { name: 'Cancel' }));
            await flush(500);
            // Asked once per page: the next dialog does not ask again.
            dialog = await openDialog();
            await checkUpstream(dialog);
            expect(api.callsTo('plan')).toHaveLength(1);
            fireEvent.click(okButton(dialog));
            await flush();
            expect(api.callsTo('run')[0].body).toEqual({ datasetUrn: DATASET_URN });
            unmount();
        }
    });

    it('a 4xx on the run with upstream is shown with its message, and the dialog can be used again', async () => {
        const api = fakeApi({
            targets: [targetOk],
            plan: [planOk],
            run: [apiError(409, 'plan_changed', 'the lineage changed since the plan was made; plan again')],
        });
        const { toast } = setup(api);
        const dialog = await openDialog();
        await checkUpstream(dialog);
        fireEvent.click(okButton(dialog));
        await flush();
        const text = 'Could not start the ingestion run: the lineage changed since the plan was made; plan again';
        expect(toast).toHaveBeenCalledWith('error', text, 5);
        expect(statusLine()).toHaveTextContent(text);
        expect(root()).toHaveAttribute('data-phase', 'idle');
    });
});

describe('the pieces', () => {
    it('client: POST /plan with maxDepth, validated answer', async () => {
        const api = fakeApi({ plan: [planOk, json(200, { waves: 'nope' })] });
        const client = createIngestionApiClient({ fetchImpl: api.fetchImpl, resolvePath: (p) => `/base${p}` });
        await expect(client.planUpstream(DATASET_URN, 4)).resolves.toMatchObject({ runs: 4 });
        expect(api.calls[0].url).toBe('/base/api/ingestion/plan');
        expect(api.calls[0].body).toEqual({ datasetUrn: DATASET_URN, maxDepth: 4 });
        expect(api.calls[0].headers['Content-Type']).toBe('application/json');
        await expect(client.planUpstream(DATASET_URN)).rejects.toMatchObject({ kind: 'bad_response' });
    });

    it('helpers: waves, counts, names, reasons, unsupported', () => {
        expect(childrenByWave([child(STAGE, 1, 'RUNNING'), child(RAW, 0, 'SUCCESS')]).map((w) => w.number)).toEqual([1, 2]);
        expect(childrenByWave([child(STAGE, 2, 'RUNNING'), child(RAW, 1, 'SUCCESS')]).map((w) => w.number)).toEqual([1, 2]);
        expect(childrenByWave(null)).toEqual([]);
        expect(childProgress([child(RAW, 0, 'SUCCESS'), child(FX, 0, 'SKIPPED'), child(STAGE, 1, 'RUNNING')])).toEqual({
            done: 2,
            total: 3,
        });
        expect(planRunCount({ ...PLAN, runs: undefined })).toBe(4);
        expect(planNames(PLAN).get(STAGE)).toBe('Staging orders');
        expect(childStatusLabel('SUCCESS')).toEqual({ state: 'succeeded', text: 'Succeeded', color: 'success' });
        expect(childStatusLabel('PENDING').text).toBe('Waiting');
        expect(childStatusLabel('TIMEOUT')).toEqual({ state: 'timeout', text: 'Timed out', color: 'error' });
        expect(childStatusLabel('running').state).toBe('running');
        expect(childStatusLabel('SOMETHING_NEW')).toEqual({ state: 'unknown', text: 'SOMETHING_NEW', color: 'default' });
        expect(describeSkipReason('cycle')).toBe('part of a lineage cycle');
        expect(describeSkipReason('not_allowed')).toBe('you may not run its job');
        expect(describeSkipReason('something_new')).toBe('something_new');
        expect(isPlanUnsupported(new IngestionApiError('not_found', 'x', { status: 404 }))).toBe(true);
        expect(isPlanUnsupported(new IngestionApiError('not_found', 'x', { status: 404, code: 'dataset_not_found' }))).toBe(false);
        expect(isPlanUnsupported(new IngestionApiError('http', 'x', { status: 500 }))).toBe(false);
    });
});
