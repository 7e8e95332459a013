import { useCallback, useEffect, useReducer, useRef } from 'react';

import {
    IngestionApiClient,
    IngestionApiError,
    RunStatus,
    UpstreamRunOptions,
    describeError,
    isTransientError,
} from './api';
import type { ParameterValue } from './parameters';
import {
    RunIngestionState,
    backoffDelay,
    canCancel,
    initialRunIngestionState,
    isBusy,
    isTerminal,
    isVisible,
    runIngestionReducer,
} from './runIngestionReducer';
import { TOAST_SECONDS, Toaster } from './toast';

export interface PollingOptions {
    /** First delay between status polls (default 1 s); doubled after each poll. */
    pollInitialDelayMs?: number;
    /** Largest delay between two polls (default 10 s). */
    pollMaxDelayMs?: number;
    /** Stop following a run after this long (default 15 min, the longest a Lambda can run). */
    pollTimeoutMs?: number;
}

export interface UseRunIngestionOptions extends PollingOptions {
    datasetUrn: string;
    client: IngestionApiClient;
    toast: Toaster;
}

export interface UseRunIngestionResult {
    state: RunIngestionState;
    visible: boolean;
    busy: boolean;
    openConfirm: () => void;
    cancel: () => void;
    setReason: (reason: string) => void;
    /** Starts the run; `parameters`: the form's values, when the target takes parameters; `upstream`: "Run with
     *  upstream" (the run is then a parent run whose children are shown as they progress). */
    confirm: (parameters?: Record<string, ParameterValue> | null, upstream?: UpstreamRunOptions | null) => void;
    /** The followed run can be cancelled now (show a Cancel action). */
    cancellable: boolean;
    /** Ask to cancel the followed run (opens a confirmation). */
    openCancelRun: () => void;
    /** Close the cancel confirmation; the run goes on. */
    dismissCancelRun: () => void;
    /** Send the cancel. */
    confirmCancelRun: () => void;
}

export const DEFAULT_POLL_INITIAL_DELAY_MS = 1000;
export const DEFAULT_POLL_MAX_DELAY_MS = 10000;
export const DEFAULT_POLL_TIMEOUT_MS = 15 * 60 * 1000;

interface FollowSession {
    cancelled: boolean;
    timer?: ReturnType<typeof setTimeout>;
    controller?: AbortController;
}

function isAbort(error: unknown): boolean {
    return (error as { name?: string })?.name === 'AbortError';
}

function formatMinutes(ms: number): string {
    if (ms < 60000) return `${Math.max(1, Math.round(ms / 1000))} seconds`;
    const minutes = Math.round(ms / 60000);
    return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}

/**
 * Fetches whether the dataset has a runnable target, starts runs and follows them to their final state.
 * Timers and requests live here; every state change goes through `runIngestionReducer`.
 */
export function useRunIngestion(options: UseRunIngestionOptions): UseRunIngestionResult {
    const { datasetUrn, client, toast } = options;
    const initialDelay = options.pollInitialDelayMs ?? DEFAULT_POLL_INITIAL_DELAY_MS;
    const maxDelay = options.pollMaxDelayMs ?? DEFAULT_POLL_MAX_DELAY_MS;
    const timeout = options.pollTimeoutMs ?? DEFAULT_POLL_TIMEOUT_MS;

    const [state, dispatch] = useReducer(runIngestionReducer, datasetUrn, initialRunIngestionState);

    // Latest values for callbacks that outlive a render (timers, promises).
    const latest = useRef({ state, client, toast, initialDelay, maxDelay, timeout });
    latest.current = { state, client, toast, initialDelay, maxDelay, timeout };

    const follow = useRef<FollowSession | null>(null);
    const starting = useRef<AbortController | null>(null);
    const cancelling = useRef<AbortController | null>(null);
    // startFollowing is defined below the effects that need it (a run already active on page load).
    const followRef = useRef<(runId: string) => void>(() => undefined);

    const stopFollowing = useCallback(() => {
        const session = follow.current;
        if (session) {
            session.cancelled = true;
            if (session.timer !== undefined) clearTimeout(session.timer);
            session.controller?.abort();
            follow.current = null;
        }
    }, []);

    // Visibility: ask the api whether this dataset has a target the caller may run.
    useEffect(() => {
        stopFollowing();
        starting.current?.abort();
        starting.current = null;
        cancelling.current?.abort();
        cancelling.current = null;
        dispatch({ type: 'RESET', datasetUrn });
        if (!datasetUrn) {
            dispatch({ type: 'TARGET_UNAVAILABLE' });
            return undefined;
        }
        const controller = new AbortController();
        latest.current.client
            .getTarget(datasetUrn, controller.signal)
            .then((target) => {
                if (controller.signal.aborted) return;
                dispatch({ type: 'TARGET_LOADED', target });
                // A run of this dataset is already in progress (started here earlier, in another tab, or by code):
                // show it live instead of an idle button. No toast: nothing happened on this page.
                const active = target.available && target.canRun ? target.activeRun : null;
                if (active && typeof active.runId === 'string' && active.runId && !isTerminal(active.state)) {
                    followRef.current(active.runId);
                }
            })
            .catch((error) => {
                if (controller.signal.aborted || isAbort(error)) return;
                // No button rather than an error toast on every dataset page: 401/403 mean the user may not run
                // it, anything else means the service is not there for this page view.
                console.debug('Run ingestion: target lookup failed, hiding the button', error);
                dispatch({ type: 'TARGET_UNAVAILABLE' });
            });
        return () => controller.abort();
    }, [datasetUrn, stopFollowing]);

    // Stop timers and requests when the component goes away.
    useEffect(
        () => () => {
            stopFollowing();
            starting.current?.abort();
            cancelling.current?.abort();
        },
        [stopFollowing],
    );

    const startFollowing = useCallback(
        (runId: string) => {
            stopFollowing();
            const session: FollowSession = { cancelled: false };
            follow.current = session;
            const startedAt = Date.now();
            let attempt = 0;

            const finish = () => {
                if (follow.current === session) follow.current = null;
            };

            const lose = (text: string, kind: 'warning' | 'error') => {
                dispatch({ type: 'FOLLOW_LOST', error: text });
                latest.current.toast(kind, text, TOAST_SECONDS[kind]);
                finish();
            };

            let poll: () => Promise<void>;

            const schedule = () => {
                const remaining = latest.current.timeout - (Date.now() - startedAt);
                if (remaining <= 0) {
                    lose(
                        `The ingestion run is still in progress after ${formatMinutes(latest.current.timeout)}; ` +
                            'it goes on, but this page stopped following it.',
                        'warning',
                    );
                    return;
                }
                const delay = Math.min(
                    backoffDelay(attempt, latest.current.initialDelay, latest.current.maxDelay),
                    remaining,
                );
                session.timer = setTimeout(() => {
                    poll();
                }, delay);
            };

            const onRun = (run: RunStatus) => {
                dispatch({ type: 'RUN_UPDATED', run });
                const label = latest.current.state.target?.label;
                if (run.duplicateOf && run.duplicateOf !== runId) {
                    latest.current.toast(
                        'info',
                        'Another run of this dataset was already in progress; showing that run.',
                        TOAST_SECONDS.info,
                    );
                    // Replaces this follow session (it is cancelled, so it schedules nothing more).
                    followRef.current(run.duplicateOf);
                    return true;
                }
                if (run.state === 'cancelled') {
                    latest.current.toast(
                        'warning',
                        `Ingestion run cancelled${label ? ` (${label})` : ''}.`,
                        TOAST_SECONDS.warning,
                    );
                    finish();
                    return true;
                }
                if (run.state === 'succeeded') {
                    latest.current.toast(
                        'success',
                        `Ingestion run succeeded${label ? ` (${label})` : ''}.`,
                        TOAST_SECONDS.success,
                    );
                    finish();
                    return true;
                }
                if (run.state === 'failed') {
                    latest.current.toast(
                        'error',
                        `Ingestion run failed${label ? ` (${label})` : ''}: ${run.message || 'no details were given.'}`,
                        TOAST_SECONDS.error,
                    );
                    finish();
                    return true;
                }
                return false;
            };

            poll = async () => {
                if (session.cancelled) return;
                session.timer = undefined;
                const controller = new AbortController();
                session.controller = controller;
                try {
                    const run = await latest.current.client.getRun(runId, controller.signal);
                    if (session.cancelled) return;
                    if (onRun(run)) return;
                } catch (error) {
                    if (session.cancelled || isAbort(error)) return;
                    if (!isTransientError(error)) {
                        lose(describeError(error, 'Could not follow the ingestion run'), 'error');
                        return;
                    }
                    // Network blips and 5xx: keep following with the same backoff, until the overall cap.
                    dispatch({ type: 'POLL_FAILED' });
                }
                attempt += 1;
                schedule();
            };

            schedule();
        },
        [stopFollowing],
    );
    followRef.current = startFollowing;

    const openConfirm = useCallback(() => dispatch({ type: 'OPEN_CONFIRM' }), []);
    const cancel = useCallback(() => dispatch({ type: 'CANCEL' }), []);
    const setReason = useCallback((reason: string) => dispatch({ type: 'SET_REASON', reason }), []);

    const confirm = useCallback((parameters?: Record<string, ParameterValue> | null, upstream?: UpstreamRunOptions | null) => {
        const current = latest.current.state;
        if (current.phase !== 'confirming') return;
        dispatch({ type: 'CONFIRM' });
        const controller = new AbortController();
        starting.current = controller;
        const urn = current.datasetUrn;
        latest.current.client
            .startRun(urn, current.reason, controller.signal, parameters, upstream)
            .then((started) => {
                if (controller.signal.aborted) return;
                starting.current = null;
                dispatch({ type: 'START_SUCCEEDED', runId: started.runId, alreadyActive: !!started.alreadyActive });
                const label = latest.current.state.target?.label;
                if (started.alreadyActive) {
                    // Nothing new was started: the api answered with the run already in progress, which is shown.
                    latest.current.toast(
                        'info',
                        started.message || 'A run of this dataset is already in progress; showing it.',
                        TOAST_SECONDS.info,
                    );
                } else {
                    latest.current.toast(
                        'info',
                        upstream?.withUpstream
                            ? `Ingestion run with upstream requested${label ? ` (${label})` : ''}.`
                            : `Ingestion run requested${label ? ` (${label})` : ''}.`,
                        TOAST_SECONDS.info,
                    );
                }
                startFollowing(started.runId);
            })
            .catch((error) => {
                if (controller.signal.aborted || isAbort(error)) return;
                starting.current = null;
                const text = describeError(error, 'Could not start the ingestion run');
                dispatch({ type: 'START_FAILED', error: text });
                latest.current.toast('error', text, TOAST_SECONDS.error);
            });
    }, [startFollowing]);

    const openCancelRun = useCallback(() => dispatch({ type: 'CANCEL_RUN_OPEN' }), []);
    const dismissCancelRun = useCallback(() => dispatch({ type: 'CANCEL_RUN_DISMISS' }), []);

    const confirmCancelRun = useCallback(() => {
        const current = latest.current.state;
        if (current.phase !== 'following' || current.cancel !== 'confirming' || !current.runId) return;
        const runId = current.runId;
        dispatch({ type: 'CANCEL_RUN_CONFIRM' });
        const controller = new AbortController();
        cancelling.current = controller;
        latest.current.client
            .cancelRun(runId, controller.signal)
            .then((answer) => {
                if (controller.signal.aborted) return;
                cancelling.current = null;
                dispatch({ type: 'CANCEL_RUN_SENT' });
                latest.current.toast('info', answer.message || 'Cancelling the ingestion run…', TOAST_SECONDS.info);
                // Look again soon rather than at the end of the current backoff step.
                if (latest.current.state.runId === runId) followRef.current(runId);
            })
            .catch((error) => {
                if (controller.signal.aborted || isAbort(error)) return;
                cancelling.current = null;
                const code = error instanceof IngestionApiError ? error.code : undefined;
                if (code === 'already_finished') {
                    // The run ended meanwhile: fetch its final state now instead of reporting an error.
                    dispatch({ type: 'CANCEL_RUN_FAILED' });
                    latest.current.toast(
                        'info',
                        (error as IngestionApiError).serverMessage || 'The ingestion run had already finished.',
                        TOAST_SECONDS.info,
                    );
                    if (latest.current.state.runId === runId) followRef.current(runId);
                    return;
                }
                dispatch({ type: 'CANCEL_RUN_FAILED', notCancellable: code === 'not_cancellable' });
                const text =
                    code === 'not_cancellable'
                        ? `This ingestion run cannot be cancelled${
                              (error as IngestionApiError).serverMessage
                                  ? `: ${(error as IngestionApiError).serverMessage}`
                                  : '.'
                          }`
                        : describeError(error, 'Could not cancel the ingestion run');
                latest.current.toast('error', text, TOAST_SECONDS.error);
            });
    }, []);

    return {
        state,
        visible: isVisible(state),
        busy: isBusy(state),
        openConfirm,
        cancel,
        setReason,
        confirm,
        cancellable: canCancel(state),
        openCancelRun,
        dismissCancelRun,
        confirmCancelRun,
    };
}
