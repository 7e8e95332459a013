import { IngestionTarget, RunState, RunStatus, TERMINAL_RUN_STATES } from './api';

/**
 * The button's whole state machine, free of timers and I/O so it is easy to test.
 *
 *   checking --TARGET_LOADED(canRun)--> idle --OPEN_CONFIRM--> confirming --CONFIRM--> starting
 *   checking --TARGET_LOADED(!canRun) / TARGET_UNAVAILABLE--> hidden
 *   confirming --CANCEL--> idle
 *   starting --START_SUCCEEDED--> following --RUN_UPDATED(terminal)--> succeeded | failed
 *   starting --START_FAILED--> idle (with lastError)
 *   following --FOLLOW_LOST--> lost (status unknown: timed out, or the status could not be read)
 *   succeeded | failed | lost --OPEN_CONFIRM--> confirming (a new run)
 */
export type Phase = 'checking' | 'hidden' | 'idle' | 'confirming' | 'starting' | 'following' | 'succeeded' | 'failed' | 'lost';

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
}

export type RunIngestionAction =
    | { type: 'RESET'; datasetUrn: string }
    | { type: 'TARGET_LOADED'; target: IngestionTarget }
    | { type: 'TARGET_UNAVAILABLE' }
    | { type: 'OPEN_CONFIRM' }
    | { type: 'CANCEL' }
    | { type: 'SET_REASON'; reason: string }
    | { type: 'CONFIRM' }
    | { type: 'START_SUCCEEDED'; runId: string }
    | { type: 'START_FAILED'; error: string }
    | { type: 'RUN_UPDATED'; run: RunStatus }
    | { type: 'POLL_FAILED' }
    | { type: 'FOLLOW_LOST'; error: string };

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

export function isTerminal(runState: RunState | null | undefined): boolean {
    return !!runState && TERMINAL_RUN_STATES.includes(runState);
}

export function runIngestionReducer(state: RunIngestionState, action: RunIngestionAction): RunIngestionState {
    switch (action.type) {
        case 'RESET':
            return initialRunIngestionState(action.datasetUrn);
        case 'TARGET_LOADED':
            if (state.phase !== 'checking') return state;
            return {
                ...state,
                target: action.target,
                phase: action.target.available && action.target.canRun ? 'idle' : 'hidden',
            };
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
            };
        case 'START_FAILED':
            if (state.phase !== 'starting') return state;
            return { ...state, phase: 'idle', lastError: action.error, runId: null, run: null, runState: null };
        case 'RUN_UPDATED': {
            if (state.phase !== 'following' || action.run.runId !== state.runId) return state;
            const next: RunIngestionState = {
                ...state,
                run: action.run,
                runState: action.run.state,
                polls: state.polls + 1,
            };
            if (action.run.state === 'succeeded') return { ...next, phase: 'succeeded', lastError: null };
            if (action.run.state === 'failed') {
                return { ...next, phase: 'failed', lastError: action.run.message || 'The ingestion run failed.' };
            }
            return next;
        }
        case 'POLL_FAILED':
            if (state.phase !== 'following') return state;
            return { ...state, polls: state.polls + 1 };
        case 'FOLLOW_LOST':
            if (state.phase !== 'following') return state;
            return { ...state, phase: 'lost', lastError: action.error };
        default:
            return state;
    }
}

function lastRunPhase(state: RunIngestionState): Phase {
    if (state.runState === 'succeeded') return 'succeeded';
    if (state.runState === 'failed') return 'failed';
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
