import { IngestionTarget, RunState, RunStatus, TERMINAL_RUN_STATES } from './api';

/**
 * The button's whole state machine, free of timers and I/O so it is easy to test.
 *
 *   checking --TARGET_LOADED(canRun)--> idle --OPEN_CONFIRM--> confirming --CONFIRM--> starting
 *   checking --TARGET_LOADED(canRun, activeRun)--> following (a run already in progress is shown, not a new button)
 *   checking --TARGET_LOADED(!canRun) / TARGET_UNAVAILABLE--> hidden
 *   confirming --CANCEL--> idle
 *   starting --START_SUCCEEDED--> following --RUN_UPDATED(terminal)--> succeeded | failed | cancelled
 *   starting --START_FAILED--> idle (with lastError)
 *   following --RUN_UPDATED(duplicateOf)--> following the other run (this one ended DUPLICATE)
 *   following --FOLLOW_LOST--> lost (status unknown: timed out, or the status could not be read)
 *   succeeded | failed | cancelled | lost --OPEN_CONFIRM--> confirming (a new run)
 *
 * Cancelling a run is a sub-state of `following` (polling goes on meanwhile):
 *   none --CANCEL_RUN_OPEN (run.cancellable)--> confirming --CANCEL_RUN_CONFIRM--> sending --CANCEL_RUN_SENT--> requested
 *   confirming --CANCEL_RUN_DISMISS--> none;  sending --CANCEL_RUN_FAILED--> none
 */
export type Phase =
    | 'checking'
    | 'hidden'
    | 'idle'
    | 'confirming'
    | 'starting'
    | 'following'
    | 'succeeded'
    | 'failed'
    | 'cancelled'
    | 'lost';

export type CancelStep = 'none' | 'confirming' | 'sending' | 'requested';

export interface RunIngestionState {
    phase: Phase;
    datasetUrn: string;
    target: IngestionTarget | null;
    reason: string;
    runId: string | null;
    run: RunStatus | null;
    /** Last state reported for the active/last run (`requested` right after the POST). */
    runState: RunState | null;
    /** Human text for the last failure (start, run, or following), shown next to the button. */
    lastError: string | null;
    /** Number of status polls made for the current run. */
    polls: number;
    /** The followed run was not started by this button (already active on page load, on a second click, or the
     *  run this one was a duplicate of). */
    adopted: boolean;
    /** Where a cancel of the followed run stands. */
    cancel: CancelStep;
}

export type RunIngestionAction =
    | { type: 'RESET'; datasetUrn: string }
    | { type: 'TARGET_LOADED'; target: IngestionTarget }
    | { type: 'TARGET_UNAVAILABLE' }
    | { type: 'OPEN_CONFIRM' }
    | { type: 'CANCEL' }
    | { type: 'SET_REASON'; reason: string }
    | { type: 'CONFIRM' }
    | { type: 'START_SUCCEEDED'; runId: string; alreadyActive?: boolean }
    | { type: 'START_FAILED'; error: string }
    | { type: 'RUN_UPDATED'; run: RunStatus }
    | { type: 'POLL_FAILED' }
    | { type: 'FOLLOW_LOST'; error: string }
    | { type: 'CANCEL_RUN_OPEN' }
    | { type: 'CANCEL_RUN_DISMISS' }
    | { type: 'CANCEL_RUN_CONFIRM' }
    | { type: 'CANCEL_RUN_SENT' }
    | { type: 'CANCEL_RUN_FAILED'; notCancellable?: boolean };

export function initialRunIngestionState(datasetUrn: string): RunIngestionState {
    return {
        phase: 'checking',
        datasetUrn,
        target: null,
        reason: '',
        runId: null,
        run: null,
        runState: null,
        lastError: null,
        polls: 0,
        adopted: false,
        cancel: 'none',
    };
}

/** A run of this button is under way: the button is busy. */
export function isBusy(state: RunIngestionState): boolean {
    return state.phase === 'starting' || state.phase === 'following';
}

/** The button is drawn at all. */
export function isVisible(state: RunIngestionState): boolean {
    return state.phase !== 'checking' && state.phase !== 'hidden';
}

/** The followed run may be cancelled now: it is active, the api says its target can be stopped, and no cancel is
 *  under way. */
export function canCancel(state: RunIngestionState): boolean {
    return state.phase === 'following' && state.run?.cancellable === true && state.cancel === 'none';
}

export function isTerminal(runState: RunState | null | undefined): boolean {
    return !!runState && TERMINAL_RUN_STATES.includes(runState);
}

export function runIngestionReducer(state: RunIngestionState, action: RunIngestionAction): RunIngestionState {
    switch (action.type) {
        case 'RESET':
            return initialRunIngestionState(action.datasetUrn);
        case 'TARGET_LOADED': {
            if (state.phase !== 'checking') return state;
            const { target } = action;
            if (!(target.available && target.canRun)) return { ...state, target, phase: 'hidden' };
            const active = target.activeRun;
            if (active && typeof active.runId === 'string' && active.runId && !isTerminal(active.state)) {
                return {
                    ...state,
                    target,
                    phase: 'following',
                    runId: active.runId,
                    run: {
                        runId: active.runId,
                        datasetUrn: state.datasetUrn,
                        state: active.state,
                        startTimeMs: active.startTimeMs ?? null,
                        requestedBy: active.requestedBy ?? null,
                    },
                    runState: active.state,
                    polls: 0,
                    adopted: true,
                    cancel: 'none',
                };
            }
            return { ...state, target, phase: 'idle' };
        }
        case 'TARGET_UNAVAILABLE':
            if (state.phase !== 'checking') return state;
            return { ...state, phase: 'hidden' };
        case 'OPEN_CONFIRM':
            if (!isVisible(state) || isBusy(state) || state.phase === 'confirming') return state;
            return { ...state, phase: 'confirming', reason: '' };
        case 'CANCEL':
            if (state.phase !== 'confirming') return state;
            return { ...state, phase: state.runId ? lastRunPhase(state) : 'idle', reason: '' };
        case 'SET_REASON':
            if (state.phase !== 'confirming') return state;
            return { ...state, reason: action.reason };
        case 'CONFIRM':
            if (state.phase !== 'confirming') return state;
            return { ...state, phase: 'starting', lastError: null };
        case 'START_SUCCEEDED':
            if (state.phase !== 'starting') return state;
            return {
                ...state,
                phase: 'following',
                runId: action.runId,
                run: null,
                runState: 'requested',
                polls: 0,
                reason: '',
                adopted: !!action.alreadyActive,
                cancel: 'none',
            };
        case 'START_FAILED':
            if (state.phase !== 'starting') return state;
            return { ...state, phase: 'idle', lastError: action.error, runId: null, run: null, runState: null };
        case 'RUN_UPDATED': {
            if (state.phase !== 'following' || action.run.runId !== state.runId) return state;
            const { duplicateOf } = action.run;
            if (duplicateOf && duplicateOf !== state.runId) {
                // This run ended DUPLICATE: another run of the dataset and target was active. Show that one.
                return {
                    ...state,
                    runId: duplicateOf,
                    run: null,
                    runState: 'requested',
                    polls: 0,
                    adopted: true,
                    cancel: 'none',
                };
            }
            const next: RunIngestionState = {
                ...state,
                run: action.run,
                runState: action.run.state,
                polls: state.polls + 1,
            };
            if (action.run.state === 'succeeded') return { ...next, phase: 'succeeded', lastError: null, cancel: 'none' };
            if (action.run.state === 'failed') {
                return {
                    ...next,
                    phase: 'failed',
                    lastError: action.run.message || 'The ingestion run failed.',
                    cancel: 'none',
                };
            }
            if (action.run.state === 'cancelled') return { ...next, phase: 'cancelled', lastError: null, cancel: 'none' };
            return next;
        }
        case 'POLL_FAILED':
            if (state.phase !== 'following') return state;
            return { ...state, polls: state.polls + 1 };
        case 'FOLLOW_LOST':
            if (state.phase !== 'following') return state;
            return { ...state, phase: 'lost', lastError: action.error, cancel: 'none' };
        case 'CANCEL_RUN_OPEN':
            if (!canCancel(state)) return state;
            return { ...state, cancel: 'confirming' };
        case 'CANCEL_RUN_DISMISS':
            if (state.cancel !== 'confirming') return state;
            return { ...state, cancel: 'none' };
        case 'CANCEL_RUN_CONFIRM':
            if (state.phase !== 'following' || state.cancel !== 'confirming') return state;
            return { ...state, cancel: 'sending' };
        case 'CANCEL_RUN_SENT':
            if (state.phase !== 'following' || state.cancel !== 'sending') return state;
            return { ...state, cancel: 'requested' };
        case 'CANCEL_RUN_FAILED': {
            if (state.cancel !== 'sending') return state;
            const run = action.notCancellable && state.run ? { ...state.run, cancellable: false } : state.run;
            return { ...state, cancel: 'none', run };
        }
        default:
            return state;
    }
}

function lastRunPhase(state: RunIngestionState): Phase {
    if (state.runState === 'succeeded') return 'succeeded';
    if (state.runState === 'failed') return 'failed';
    if (state.runState === 'cancelled') return 'cancelled';
    return state.lastError ? 'lost' : 'idle';
}

/**
 * Delay before poll number `attempt` (0-based): initial, 2x, 4x, ... capped at `maxMs`.
 * With the defaults: 1 s, 2 s, 4 s, 8 s, 10 s, 10 s, ...
 */
export function backoffDelay(attempt: number, initialMs = 1000, maxMs = 10000): number {
    const exponent = Math.min(Math.max(attempt, 0), 30);
    return Math.min(initialMs * 2 ** exponent, maxMs);
}
