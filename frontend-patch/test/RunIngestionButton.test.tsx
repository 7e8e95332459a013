import { act, fireEvent, render, screen, within } from '@testing-library/react';
import { message } from 'antd';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { RunIngestionButton, RunIngestionButtonProps, datasetNameFromUrn } from '../src/RunIngestionButton';
import type { ToastKind } from '../src/toast';
import {
    DATASET_URN,
    RUN_ID,
    apiError,
    fakeApi,
    json,
    runStatus,
    startedOk,
    targetOk,
} from './helpers/fakeApi';

type Api = ReturnType<typeof fakeApi>;

/** Let promises settle and move fake time forward by `ms`. */
async function flush(ms = 0) {
    await act(async () => {
        await vi.advanceTimersByTimeAsync(ms);
    });
}

function setup(api: Api, props: Partial<RunIngestionButtonProps> = {}) {
    const toast = vi.fn<(kind: ToastKind, content: string, seconds: number) => void>();
    const utils = render(
        <RunIngestionButton datasetUrn={DATASET_URN} fetchImpl={api.fetchImpl} toast={toast} {...props} />,
    );
    return { ...utils, toast };
}

const button = () => screen.getByTestId('run-ingestion-button');
const status = () => screen.getByTestId('run-ingestion-status');

async function openDialog() {
    fireEvent.click(button());
    await flush();
    return screen.getByRole('dialog', { name: 'Run ingestion' });
}

async function confirmRun(reason?: string) {
    const dialog = await openDialog();
    if (reason !== undefined) {
        fireEvent.change(within(dialog).getByLabelText('Reason (optional)'), { target: { value: reason } });
    }
    fireEvent.click(within(dialog).getByRole('button', { name: 'Run' }));
    await flush();
}

beforeEach(() => {
    vi.useFakeTimers();
});

afterEach(() => {
    vi.useRealTimers();
});

describe('visibility', () => {
    it.each([
        ['no target mapped (available:false)', json(200, { ...targetBody(), available: false, canRun: false })],
        ['user may not run it (canRun:false)', json(200, { ...targetBody(), canRun: false })],
        ['401 on targets', apiError(401, 'unauthenticated', 'Not signed in')],
        ['403 on targets', apiError(403, 'forbidden', 'Forbidden')],
        ['503 on targets', apiError(503, 'datahub_unavailable', 'DataHub is down')],
        ['network error on targets', new TypeError('Failed to fetch')],
        ['malformed targets answer', json(200, { nope: true })],
    ])('shows nothing when %s, and toasts nothing', async (_name, reply) => {
        const api = fakeApi({ targets: [reply] });
        const { container, toast } = setup(api);
        await flush();
        expect(container).toBeEmptyDOMElement();
        expect(screen.queryByRole('button')).toBeNull();
        expect(toast).not.toHaveBeenCalled();
        expect(api.callsTo('targets')).toHaveLength(1);
    });

    it('shows nothing while the target is being checked', async () => {
        const api = fakeApi({ targets: ['hang'] });
        const { container } = setup(api);
        await flush();
        expect(container).toBeEmptyDOMElement();
    });

    it('shows an idle, enabled button when the target is runnable', async () => {
        const api = fakeApi({ targets: [targetOk] });
        setup(api);
        await flush();
        expect(button()).toHaveTextContent('Run ingestion');
        expect(button().tagName).toBe('BUTTON');
        expect(button()).toBeEnabled();
        expect(button()).toHaveAttribute('aria-busy', 'false');
        expect(button()).toHaveAttribute('aria-haspopup', 'dialog');
        expect(screen.getByRole('status')).toBeEmptyDOMElement();
        expect(api.callsTo('targets')[0].url).toBe(
            `/api/ingestion/targets?datasetUrn=${encodeURIComponent(DATASET_URN)}`,
        );
    });

    it('resolves the api path through resolvePath (base path)', async () => {
        const api = fakeApi({ targets: [targetOk] });
        setup(api, { resolvePath: (path) => `/datahub${path}` });
        await flush();
        expect(api.calls[0].url.startsWith('/datahub/api/ingestion/targets?datasetUrn=')).toBe(true);
    });

    it('checks again when the dataset changes, without refetching on re-render', async () => {
        const other = 'urn:li:dataset:(urn:li:dataPlatform:hive,analytics.customers,PROD)';
        const api = fakeApi({
            targets: (call) =>
                call.url.includes(encodeURIComponent(other))
                    ? json(200, { ...targetBody(), datasetUrn: other, available: false, canRun: false })
                    : targetOk,
        });
        const toast = vi.fn();
        const { rerender } = render(
            <RunIngestionButton datasetUrn={DATASET_URN} fetchImpl={api.fetchImpl} toast={toast} resolvePath={(p) => p} />,
        );
        await flush();
        expect(button()).toBeInTheDocument();
        rerender(<RunIngestionButton datasetUrn={DATASET_URN} fetchImpl={api.fetchImpl} toast={toast} resolvePath={(p) => p} />);
        await flush();
        expect(api.callsTo('targets')).toHaveLength(1);
        rerender(<RunIngestionButton datasetUrn={other} fetchImpl={api.fetchImpl} toast={toast} resolvePath={(p) => p} />);
        await flush();
        expect(api.callsTo('targets')).toHaveLength(2);
        expect(screen.queryByTestId('run-ingestion-button')).toBeNull();
    });
});

describe('confirmation dialog', () => {
    it('names the dataset and the target label, with an optional reason field', async () => {
        const api = fakeApi({ targets: [targetOk] });
        setup(api);
        await flush();
        const dialog = await openDialog();
        expect(dialog).toHaveAttribute('aria-labelledby');
        expect(within(dialog).getByText('analytics.orders')).toBeInTheDocument();
        expect(within(dialog).getByText('Orders nightly load')).toBeInTheDocument();
        expect(within(dialog).getByText(DATASET_URN)).toBeInTheDocument();
        const reason = within(dialog).getByLabelText('Reason (optional)');
        expect(reason.tagName).toBe('TEXTAREA');
        expect(reason).toHaveValue('');
        expect(api.callsTo('run')).toHaveLength(0);
    });

    it('uses the datasetName prop when given', async () => {
        const api = fakeApi({ targets: [targetOk] });
        setup(api, { datasetName: 'Orders (Hive)' });
        await flush();
        const dialog = await openDialog();
        expect(within(dialog).getByText('Orders (Hive)')).toBeInTheDocument();
    });

    it('cancel closes the dialog and starts nothing', async () => {
        const api = fakeApi({ targets: [targetOk], run: [startedOk] });
        const { toast } = setup(api);
        await flush();
        const dialog = await openDialog();
        fireEvent.change(within(dialog).getByLabelText('Reason (optional)'), { target: { value: 'typo' } });
        fireEvent.click(within(dialog).getByRole('button', { name: 'Cancel' }));
        await flush(1000);
        expect(screen.queryByRole('dialog')).toBeNull();
        expect(api.callsTo('run')).toHaveLength(0);
        expect(toast).not.toHaveBeenCalled();
        expect(button()).toBeEnabled();
        // The reason does not survive a cancel.
        const again = await openDialog();
        expect(within(again).getByLabelText('Reason (optional)')).toHaveValue('');
    });
});

describe('a run', () => {
    it('POSTs the run, is busy while it is active, and shows success', async () => {
        const api = fakeApi({
            targets: [targetOk],
            run: [startedOk],
            runs: [runStatus('requested'), runStatus('running'), runStatus('succeeded', { durationMs: 34000 })],
        });
        const { toast } = setup(api);
        await flush();
        await confirmRun('  backfill after the outage  ');

        const post = api.callsTo('run')[0];
        expect(post.method).toBe('POST');
        expect(post.credentials).toBe('include');
        expect(post.headers['Content-Type']).toBe('application/json');
        expect(post.body).toEqual({ datasetUrn: DATASET_URN, reason: 'backfill after the outage' });

        expect(screen.queryByRole('dialog')).toBeNull();
        expect(button()).toBeDisabled();
        expect(button()).toHaveAttribute('aria-busy', 'true');
        expect(status()).toHaveTextContent('Run requested…');
        expect(toast).toHaveBeenCalledWith('info', 'Ingestion run requested (Orders nightly load).', 3);

        await flush(1000); // poll 1: requested
        expect(api.callsTo('runs')).toHaveLength(1);
        expect(api.callsTo('runs')[0].url).toBe(`/api/ingestion/runs/${RUN_ID}`);
        expect(api.callsTo('runs')[0].credentials).toBe('include');
        expect(button()).toBeDisabled();

        await flush(2000); // poll 2: running
        expect(status()).toHaveTextContent('Running…');
        expect(button()).toHaveAttribute('aria-busy', 'true');

        await flush(4000); // poll 3: succeeded
        expect(status()).toHaveTextContent('Last run succeeded in 34s');
        expect(button()).toBeEnabled();
        expect(button()).toHaveAttribute('aria-busy', 'false');
        expect(toast).toHaveBeenLastCalledWith('success', 'Ingestion run succeeded (Orders nightly load).', 3);

        // Terminal: polling stops.
        await flush(60000);
        expect(api.callsTo('runs')).toHaveLength(3);
    });

    it('opening the dialog is impossible while a run is active', async () => {
        const api = fakeApi({ targets: [targetOk], run: [startedOk], runs: [runStatus('running')] });
        setup(api);
        await flush();
        await confirmRun();
        fireEvent.click(button());
        await flush();
        expect(screen.queryByRole('dialog')).toBeNull();
    });

    it('shows a run that ends failed, with its message', async () => {
        const api = fakeApi({
            targets: [targetOk],
            run: [startedOk],
            runs: [runStatus('running'), runStatus('failed', { message: 'Lambda raised KeyError: order_id' })],
        });
        const { toast } = setup(api);
        await flush();
        await confirmRun();
        await flush(1000);
        await flush(2000);
        expect(status()).toHaveTextContent('Last run failed: Lambda raised KeyError: order_id');
        expect(toast).toHaveBeenLastCalledWith(
            'error',
            'Ingestion run failed (Orders nightly load): Lambda raised KeyError: order_id',
            5,
        );
        expect(button()).toBeEnabled();
        await flush(60000);
        expect(api.callsTo('runs')).toHaveLength(2);
    });

    it('can start another run after one finished', async () => {
        const api = fakeApi({ targets: [targetOk], run: [startedOk], runs: [runStatus('succeeded')] });
        setup(api);
        await flush();
        await confirmRun();
        await flush(1000);
        expect(button()).toBeEnabled();
        await confirmRun();
        expect(api.callsTo('run')).toHaveLength(2);
        expect(button()).toBeDisabled();
    });

    it('keeps the dialog up and the button busy while the POST is pending', async () => {
        const api = fakeApi({ targets: [targetOk], run: ['hang'] });
        setup(api);
        await flush();
        const dialog = await openDialog();
        fireEvent.click(within(dialog).getByRole('button', { name: 'Run' }));
        await flush();
        expect(screen.getByRole('dialog', { name: 'Run ingestion' })).toBeInTheDocument();
        expect(within(dialog).getByRole('button', { name: 'Cancel' })).toBeDisabled();
        expect(within(dialog).getByLabelText('Reason (optional)')).toBeDisabled();
        expect(button()).toHaveAttribute('aria-busy', 'true');
        expect(status()).toHaveTextContent('Starting…');
    });
});

describe('errors starting a run', () => {
    it.each([
        [400, 'invalid_request', 'datasetUrn is not a dataset URN', 'Could not start the ingestion run: datasetUrn is not a dataset URN'],
        [401, 'unauthenticated', 'Session expired', 'Your DataHub session has expired. Please sign in again.'],
        [403, 'forbidden', 'Manage Ingestion privilege required', 'You are not allowed to run this ingestion: Manage Ingestion privilege required'],
        [404, 'dataset_not_found', 'Dataset does not exist in DataHub', 'Could not start the ingestion run: Dataset does not exist in DataHub'],
        [422, 'no_target', 'No ingestion target is mapped for this dataset', 'Could not start the ingestion run: No ingestion target is mapped for this dataset'],
        [503, 'datahub_unavailable', 'DataHub did not answer', 'Could not start the ingestion run: DataHub did not answer'],
    ])('HTTP %i (%s): toast with the server message, no polling', async (statusCode, code, serverMessage, expected) => {
        const api = fakeApi({ targets: [targetOk], run: [apiError(statusCode, code, serverMessage)] });
        const { toast } = setup(api);
        await flush();
        await confirmRun();
        expect(toast).toHaveBeenCalledTimes(1);
        expect(toast).toHaveBeenCalledWith('error', expected, 5);
        expect(status()).toHaveTextContent(expected);
        expect(button()).toBeEnabled();
        expect(button()).toHaveAttribute('aria-busy', 'false');
        expect(screen.queryByRole('dialog')).toBeNull();
        await flush(30000);
        expect(api.callsTo('runs')).toHaveLength(0);
    });

    it('network error: toast says the service could not be reached', async () => {
        const api = fakeApi({ targets: [targetOk], run: [new TypeError('Failed to fetch')] });
        const { toast } = setup(api);
        await flush();
        await confirmRun();
        expect(toast).toHaveBeenCalledWith(
            'error',
            'Could not start the ingestion run: the ingestion service could not be reached. Check your connection and try again.',
            5,
        );
        expect(button()).toBeEnabled();
        expect(api.callsTo('runs')).toHaveLength(0);
    });

    it('an error without a JSON body still gives a useful message', async () => {
        const api = fakeApi({ targets: [targetOk], run: [{ status: 500, raw: 'Internal Server Error' }] });
        const { toast } = setup(api);
        await flush();
        await confirmRun();
        expect(toast).toHaveBeenCalledWith('error', 'Could not start the ingestion run: HTTP 500', 5);
    });
});

describe('polling', () => {
    it('backs off 1 s, 2 s, 4 s, 8 s, then every 10 s', async () => {
        const api = fakeApi({ targets: [targetOk], run: [startedOk], runs: [runStatus('running')] });
        setup(api);
        await flush();
        await confirmRun();
        const startedAt = Date.now();
        for (let i = 0; i < 8; i++) await flush(10000);
        const offsets = api.callsTo('runs').map((c) => c.at - startedAt);
        expect(offsets.slice(0, 8)).toEqual([1000, 3000, 7000, 15000, 25000, 35000, 45000, 55000]);
        const gaps = offsets.slice(1).map((t, i) => t - offsets[i]);
        expect(gaps.slice(0, 6)).toEqual([2000, 4000, 8000, 10000, 10000, 10000]);
    });

    it('keeps following through transient errors (network, 503)', async () => {
        const api = fakeApi({
            targets: [targetOk],
            run: [startedOk],
            runs: [new TypeError('Failed to fetch'), apiError(503, 'datahub_unavailable', 'down'), runStatus('succeeded')],
        });
        const { toast } = setup(api);
        await flush();
        await confirmRun();
        await flush(1000);
        await flush(2000);
        expect(button()).toHaveAttribute('aria-busy', 'true');
        await flush(4000);
        expect(api.callsTo('runs')).toHaveLength(3);
        expect(status()).toHaveTextContent('Last run succeeded');
        expect(toast.mock.calls.map((c) => c[0])).toEqual(['info', 'success']);
    });

    it.each([
        [401, 'unauthenticated', 'Your DataHub session has expired. Please sign in again.'],
        [403, 'forbidden', 'You are not allowed to run this ingestion: not yours'],
        [404, 'run_not_found', 'Could not follow the ingestion run: not yours'],
    ])('stops on HTTP %i (%s) while following and says so', async (statusCode, code, expected) => {
        const api = fakeApi({ targets: [targetOk], run: [startedOk], runs: [apiError(statusCode, code, 'not yours')] });
        const { toast } = setup(api);
        await flush();
        await confirmRun();
        await flush(1000);
        expect(toast).toHaveBeenLastCalledWith('error', expected, 5);
        expect(status()).toHaveTextContent(`Run status unknown: ${expected}`);
        expect(button()).toBeEnabled();
        await flush(60000);
        expect(api.callsTo('runs')).toHaveLength(1);
    });

    it('gives up after the overall cap with a warning; the run goes on', async () => {
        const api = fakeApi({ targets: [targetOk], run: [startedOk], runs: [runStatus('running')] });
        const { toast } = setup(api, { pollTimeoutMs: 30000 });
        await flush();
        await confirmRun();
        const startedAt = Date.now();
        for (let i = 0; i < 4; i++) await flush(10000);
        const offsets = api.callsTo('runs').map((c) => c.at - startedAt);
        expect(offsets).toEqual([1000, 3000, 7000, 15000, 25000, 30000]);
        expect(toast).toHaveBeenLastCalledWith(
            'warning',
            'The ingestion run is still in progress after 30 seconds; it goes on, but this page stopped following it.',
            5,
        );
        expect(status()).toHaveTextContent('Run status unknown');
        expect(button()).toBeEnabled();
        await flush(120000);
        expect(api.callsTo('runs')).toHaveLength(6);
    });

    it('takes custom backoff bounds', async () => {
        const api = fakeApi({ targets: [targetOk], run: [startedOk], runs: [runStatus('running')] });
        setup(api, { pollInitialDelayMs: 100, pollMaxDelayMs: 300 });
        await flush();
        await confirmRun();
        const startedAt = Date.now();
        await flush(1200);
        const offsets = api.callsTo('runs').map((c) => c.at - startedAt);
        expect(offsets).toEqual([100, 300, 600, 900, 1200]);
    });

    it('stops polling when unmounted', async () => {
        const api = fakeApi({ targets: [targetOk], run: [startedOk], runs: [runStatus('running')] });
        const { unmount } = setup(api);
        await flush();
        await confirmRun();
        await flush(1000);
        expect(api.callsTo('runs')).toHaveLength(1);
        unmount();
        await flush(60000);
        expect(api.callsTo('runs')).toHaveLength(1);
    });

    it('stops following the old run when the dataset changes', async () => {
        const other = 'urn:li:dataset:(urn:li:dataPlatform:hive,analytics.customers,PROD)';
        const api = fakeApi({ targets: [targetOk], run: [startedOk], runs: [runStatus('running')] });
        const toast = vi.fn();
        const { rerender } = render(<RunIngestionButton datasetUrn={DATASET_URN} fetchImpl={api.fetchImpl} toast={toast} />);
        await flush();
        await confirmRun();
        await flush(1000);
        rerender(<RunIngestionButton datasetUrn={other} fetchImpl={api.fetchImpl} toast={toast} />);
        await flush(60000);
        expect(api.callsTo('runs')).toHaveLength(1);
        expect(button()).toBeEnabled();
        expect(status()).toBeEmptyDOMElement();
    });
});

describe('defaults', () => {
    it('toasts through antd message like DataHub showToastMessage', async () => {
        const open = vi.spyOn(message, 'open').mockImplementation((() => undefined) as never);
        const api = fakeApi({ targets: [targetOk], run: [apiError(422, 'no_target', 'No target')] });
        render(<RunIngestionButton datasetUrn={DATASET_URN} fetchImpl={api.fetchImpl} />);
        await flush();
        await confirmRun();
        expect(open).toHaveBeenCalledWith({
            type: 'error',
            content: 'Could not start the ingestion run: No target',
            duration: 5,
        });
    });

    it('uses the global fetch when none is given', async () => {
        const api = fakeApi({ targets: [targetOk] });
        vi.stubGlobal('fetch', api.fetchImpl);
        try {
            render(<RunIngestionButton datasetUrn={DATASET_URN} toast={vi.fn()} />);
            await flush();
            expect(button()).toBeInTheDocument();
            expect(api.calls).toHaveLength(1);
        } finally {
            vi.unstubAllGlobals();
        }
    });

    it('derives the dataset name from the URN', () => {
        expect(datasetNameFromUrn(DATASET_URN)).toBe('analytics.orders');
        expect(datasetNameFromUrn('urn:li:dataset:(urn:li:dataPlatform:s3,bucket/path/to,file.csv,DEV)')).toBe(
            'bucket/path/to,file.csv',
        );
        expect(datasetNameFromUrn('not-a-urn')).toBe('not-a-urn');
    });
});

function targetBody() {
    return { datasetUrn: DATASET_URN, available: true, canRun: true, label: 'Orders nightly load', reason: null };
}
