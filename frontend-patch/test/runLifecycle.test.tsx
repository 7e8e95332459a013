// The run lifecycle in the button (issue 8, points 7 and 8): a run already in progress is shown instead of the
// idle button, a second start shows the active run, a DUPLICATE run hands over to the run it duplicated, and an
// active run whose target can be stopped can be cancelled (with confirmation).
import { act, fireEvent, render, screen, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { RunIngestionButton } from '../src/RunIngestionButton';
import type { ToastKind } from '../src/toast';
import {
    DATASET_URN,
    OTHER_RUN_ID,
    RUN_ID,
    alreadyActiveReply,
    apiError,
    cancellingOk,
    fakeApi,
    runStatus,
    startedOk,
    targetOk,
    targetWithActiveRun,
} from './helpers/fakeApi';

type Api = ReturnType<typeof fakeApi>;

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

const button = () => screen.getByTestId('run-ingestion-button');
const status = () => screen.getByTestId('run-ingestion-status');
const cancelButton = () => screen.queryByTestId('run-ingestion-cancel');
const root = () => screen.getByTestId('run-ingestion');

async function confirmRun() {
    fireEvent.click(button());
    await flush();
    const dialog = screen.getByRole('dialog', { name: 'Run ingestion' });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Run' }));
    await flush();
}

async function openCancelDialog() {
    fireEvent.click(cancelButton()!);
    await flush();
    return screen.getByRole('dialog', { name: 'Cancel ingestion run' });
}

beforeEach(() => {
    vi.useFakeTimers();
});

afterEach(() => {
    vi.useRealTimers();
});

describe('a run already in progress when the page loads', () => {
    it('is followed live instead of showing the idle button, and says who started it', async () => {
        const other = (state: string) => runStatus(state, { runId: OTHER_RUN_ID, requestedBy: 'urn:li:corpuser:jdoe' });
        const api = fakeApi({ targets: [targetWithActiveRun('running')], runs: [other('running'), other('succeeded')] });
        const { toast } = setup(api);
        await flush();
        expect(root()).toHaveAttribute('data-phase', 'following');
        expect(button()).toBeDisabled();
        expect(button()).toHaveAttribute('aria-busy', 'true');
        expect(status()).toHaveTextContent('Running… (started by jdoe)');
        // Nothing happened on this page: no toast for finding it.
        expect(toast).not.toHaveBeenCalled();
        expect(api.callsTo('run')).toHaveLength(0);

        await flush(1000);
        expect(api.callsTo('runs')[0].url).toBe(`/api/ingestion/runs/${OTHER_RUN_ID}`);
        await flush(2000);
        expect(root()).toHaveAttribute('data-phase', 'succeeded');
        expect(button()).toBeEnabled();
        expect(toast).toHaveBeenLastCalledWith('success', 'Ingestion run succeeded (Orders nightly load).', 3);
    });

    it('is ignored when the user may not run the target (the button stays hidden)', async () => {
        const api = fakeApi({
            targets: [
                (() => {
                    const reply = targetWithActiveRun('running') as { status: number; body: Record<string, unknown> };
                    return { status: 200, body: { ...reply.body, canRun: false } };
                })(),
            ],
        });
        const { container } = setup(api);
        await flush(5000);
        expect(container).toBeEmptyDOMElement();
        expect(api.callsTo('runs')).toHaveLength(0);
    });

    it('a null activeRun gives the idle button', async () => {
        const reply = targetOk as { status: number; body: Record<string, unknown> };
        const api = fakeApi({ targets: [{ status: 200, body: { ...reply.body, activeRun: null } }] });
        setup(api);
        await flush(5000);
        expect(button()).toBeEnabled();
        expect(button()).toHaveTextContent('Run ingestion');
        expect(api.callsTo('runs')).toHaveLength(0);
    });
});

describe('one active run per dataset and target', () => {
    it('a start while a run is active shows that run (info toast with the api message), starting nothing new', async () => {
        const api = fakeApi({
            targets: [targetOk],
            run: [alreadyActiveReply],
            runs: [runStatus('running', { runId: OTHER_RUN_ID, requestedBy: 'urn:li:corpuser:jdoe' })],
        });
        const { toast } = setup(api);
        await flush();
        await confirmRun();
        expect(toast).toHaveBeenCalledTimes(1);
        expect(toast).toHaveBeenCalledWith('info', 'A run of this dataset is already in progress (started by jdoe).', 3);
        expect(root()).toHaveAttribute('data-phase', 'following');
        expect(button()).toBeDisabled();
        await flush(1000);
        expect(api.callsTo('runs').map((c) => c.url)).toEqual([`/api/ingestion/runs/${OTHER_RUN_ID}`]);
        expect(status()).toHaveTextContent('Running… (started by jdoe)');
    });

    it('a run that ended DUPLICATE hands over to the run it duplicated', async () => {
        const api = fakeApi({
            targets: [targetOk],
            run: [startedOk],
            runs: (call) =>
                call.url.endsWith(RUN_ID)
                    ? runStatus('cancelled', { duplicateOf: OTHER_RUN_ID, datahubStatus: 'DUPLICATE', cancellable: false })
                    : runStatus('succeeded', { runId: OTHER_RUN_ID, requestedBy: 'urn:li:corpuser:jdoe', durationMs: 5000 }),
        });
        const { toast } = setup(api);
        await flush();
        await confirmRun();
        await flush(1000); // this run: DUPLICATE of OTHER_RUN_ID
        expect(toast).toHaveBeenLastCalledWith(
            'info',
            'Another run of this dataset was already in progress; showing that run.',
            3,
        );
        expect(root()).toHaveAttribute('data-phase', 'following');
        // No "cancelled" toast for the duplicate itself.
        expect(toast.mock.calls.filter(([kind]) => kind === 'warning')).toHaveLength(0);
        await flush(1000); // the other run, followed from the first backoff step
        expect(api.callsTo('runs').map((c) => c.url)).toEqual([
            `/api/ingestion/runs/${RUN_ID}`,
            `/api/ingestion/runs/${OTHER_RUN_ID}`,
        ]);
        expect(root()).toHaveAttribute('data-phase', 'succeeded');
        expect(status()).toHaveTextContent('Last run succeeded in 5s');
        await flush(60000);
        expect(api.callsTo('runs')).toHaveLength(2);
    });
});

describe('cancel', () => {
    it('is offered only while the api says the run is cancellable', async () => {
        const api = fakeApi({
            targets: [targetOk],
            run: [startedOk],
            runs: [runStatus('running', { cancellable: false }), runStatus('running', { cancellable: true })],
        });
        setup(api);
        await flush();
        await confirmRun();
        expect(cancelButton()).toBeNull(); // not known yet
        await flush(1000);
        expect(cancelButton()).toBeNull(); // a synchronous Lambda: cannot be stopped
        await flush(2000);
        expect(cancelButton()).toBeEnabled();
        expect(cancelButton()).toHaveTextContent('Cancel run');
    });

    it('asks for confirmation; "Keep running" sends nothing', async () => {
        const api = fakeApi({ targets: [targetOk], run: [startedOk], runs: [runStatus('running')] });
        const { toast } = setup(api);
        await flush();
        await confirmRun();
        await flush(1000);
        const dialog = await openCancelDialog();
        expect(within(dialog).getByText('analytics.orders')).toBeInTheDocument();
        expect(within(dialog).getByText('Orders nightly load')).toBeInTheDocument();
        fireEvent.click(within(dialog).getByRole('button', { name: 'Keep running' }));
        await flush();
        expect(screen.queryByRole('dialog')).toBeNull();
        expect(api.callsTo('cancel')).toHaveLength(0);
        expect(toast).toHaveBeenCalledTimes(1); // only "requested"
        expect(cancelButton()).toBeEnabled();
    });

    it('cancels: POST /runs/{id}/cancel, "Cancelling…", polls soon, ends cancelled with a warning toast', async () => {
        const api = fakeApi({
            targets: [targetOk],
            run: [startedOk],
            runs: [runStatus('running'), runStatus('running'), runStatus('cancelled', { cancellable: false })],
            cancel: [cancellingOk],
        });
        const { toast } = setup(api);
        await flush();
        await confirmRun();
        await flush(1000);
        await flush(2000); // two polls; the next would be 4 s later
        const dialog = await openCancelDialog();
        fireEvent.click(within(dialog).getByRole('button', { name: 'Cancel run' }));
        await flush();
        const post = api.callsTo('cancel')[0];
        expect(post.url).toBe(`/api/ingestion/runs/${RUN_ID}/cancel`);
        expect(post.method).toBe('POST');
        expect(post.credentials).toBe('include');
        expect(post.headers['Content-Type']).toBe('application/json');
        expect(toast).toHaveBeenLastCalledWith('info', 'Cancelling the run.', 3);
        expect(status()).toHaveTextContent('Cancelling…');
        expect(cancelButton()).toBeDisabled();
        expect(screen.queryByRole('dialog')).toBeNull();

        await flush(1000); // polled again 1 s after the cancel, not 4 s
        expect(api.callsTo('runs')).toHaveLength(3);
        expect(root()).toHaveAttribute('data-phase', 'cancelled');
        expect(status()).toHaveTextContent('Last run cancelled');
        expect(toast).toHaveBeenLastCalledWith('warning', 'Ingestion run cancelled (Orders nightly load).', 5);
        expect(button()).toBeEnabled();
        expect(cancelButton()).toBeNull();
        await flush(60000);
        expect(api.callsTo('runs')).toHaveLength(3);
    });

    it('409 not_cancellable: error toast with the server text, Cancel withdrawn, still following', async () => {
        const api = fakeApi({
            targets: [targetOk],
            run: [startedOk],
            runs: [runStatus('running')],
            cancel: [apiError(409, 'not_cancellable', 'A synchronous Lambda invocation cannot be stopped.')],
        });
        const { toast } = setup(api);
        await flush();
        await confirmRun();
        await flush(1000);
        const dialog = await openCancelDialog();
        fireEvent.click(within(dialog).getByRole('button', { name: 'Cancel run' }));
        await flush();
        expect(toast).toHaveBeenLastCalledWith(
            'error',
            'This ingestion run cannot be cancelled: A synchronous Lambda invocation cannot be stopped.',
            5,
        );
        expect(cancelButton()).toBeNull();
        expect(root()).toHaveAttribute('data-phase', 'following');
        expect(status()).toHaveTextContent('Running…');
    });

    it('409 already_finished: no error, the final state is fetched at once', async () => {
        const api = fakeApi({
            targets: [targetOk],
            run: [startedOk],
            runs: [runStatus('running'), runStatus('succeeded', { durationMs: 2000 })],
            cancel: [apiError(409, 'already_finished', 'The run already finished.')],
        });
        const { toast } = setup(api);
        await flush();
        await confirmRun();
        await flush(1000);
        const dialog = await openCancelDialog();
        fireEvent.click(within(dialog).getByRole('button', { name: 'Cancel run' }));
        await flush();
        expect(toast).toHaveBeenLastCalledWith('info', 'The run already finished.', 3);
        await flush(1000);
        expect(root()).toHaveAttribute('data-phase', 'succeeded');
        expect(toast.mock.calls.filter(([kind]) => kind === 'error')).toHaveLength(0);
    });

    it.each([
        [apiError(403, 'forbidden', 'Not yours'), 'You are not allowed to run this ingestion: Not yours'],
        [apiError(503, 'datahub_unavailable', 'DataHub did not answer'), 'Could not cancel the ingestion run: DataHub did not answer'],
        [new TypeError('Failed to fetch'), 'Could not cancel the ingestion run: the ingestion service could not be reached. Check your connection and try again.'],
    ])('other errors: error toast, Cancel offered again (%#)', async (reply, expected) => {
        const api = fakeApi({ targets: [targetOk], run: [startedOk], runs: [runStatus('running')], cancel: [reply] });
        const { toast } = setup(api);
        await flush();
        await confirmRun();
        await flush(1000);
        const dialog = await openCancelDialog();
        fireEvent.click(within(dialog).getByRole('button', { name: 'Cancel run' }));
        await flush();
        expect(toast).toHaveBeenLastCalledWith('error', expected, 5);
        expect(cancelButton()).toBeEnabled();
        expect(root()).toHaveAttribute('data-phase', 'following');
    });

    it('keeps the dialog up while the cancel is pending, and unmounting aborts it quietly', async () => {
        const api = fakeApi({ targets: [targetOk], run: [startedOk], runs: [runStatus('running')], cancel: ['hang'] });
        const { toast, unmount } = setup(api);
        await flush();
        await confirmRun();
        await flush(1000);
        const dialog = await openCancelDialog();
        fireEvent.click(within(dialog).getByRole('button', { name: 'Cancel run' }));
        await flush();
        expect(screen.getByRole('dialog', { name: 'Cancel ingestion run' })).toBeInTheDocument();
        expect(within(dialog).getByRole('button', { name: 'Keep running' })).toBeDisabled();
        const before = toast.mock.calls.length;
        const polls = api.callsTo('runs').length;
        unmount();
        await flush(60000);
        expect(toast.mock.calls.length).toBe(before);
        expect(api.callsTo('runs').length).toBe(polls);
    });

    it('a run found active on page load can be cancelled too', async () => {
        const other = (state: string) => runStatus(state, { runId: OTHER_RUN_ID });
        const api = fakeApi({
            targets: [targetWithActiveRun('requested')],
            runs: [other('requested'), other('cancelled')],
            cancel: [cancellingOk],
        });
        setup(api);
        await flush();
        expect(cancelButton()).toBeNull(); // cancellable is only known from the run's own status
        await flush(1000);
        const dialog = await openCancelDialog();
        fireEvent.click(within(dialog).getByRole('button', { name: 'Cancel run' }));
        await flush();
        expect(api.callsTo('cancel')[0].url).toBe(`/api/ingestion/runs/${OTHER_RUN_ID}/cancel`);
        await flush(1000);
        expect(root()).toHaveAttribute('data-phase', 'cancelled');
    });
});
