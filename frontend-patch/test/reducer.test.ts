import { describe, expect, it } from 'vitest';

import type { RunStatus } from '../src/api';
import {
    RunIngestionAction,
    RunIngestionState,
    backoffDelay,
    initialRunIngestionState,
    canCancel,
    isBusy,
    isVisible,
    runIngestionReducer,
} from '../src/runIngestionReducer';

const URN = 'urn:li:dataset:(urn:li:dataPlatform:hive,db.t,PROD)';
const target = { datasetUrn: URN, available: true, canRun: true, label: 'T' };
const run = (state: RunStatus['state'], extra: Partial<RunStatus> = {}): RunStatus => ({
    runId: 'r1',
    datasetUrn: URN,
    state,
    ...extra,
});

const reduce = (actions: RunIngestionAction[], from: RunIngestionState = initialRunIngestionState(URN)) =>
    actions.reduce(runIngestionReducer, from);

describe('runIngestionReducer', () => {
    it('starts hidden while checking', () => {
        const state = initialRunIngestionState(URN);
        expect(state.phase).toBe('checking');
        expect(isVisible(state)).toBe(false);
        expect(isBusy(state)).toBe(false);
    });

    it('shows the button only when a target is available and runnable', () => {
        expect(reduce([{ type: 'TARGET_LOADED', target }]).phase).toBe('idle');
        expect(reduce([{ type: 'TARGET_LOADED', target: { ...target, available: false, canRun: false } }]).phase).toBe(
            'hidden',
        );
        expect(reduce([{ type: 'TARGET_LOADED', target: { ...target, canRun: false } }]).phase).toBe('hidden');
        expect(reduce([{ type: 'TARGET_UNAVAILABLE' }]).phase).toBe('hidden');
    });

    it('goes idle -> confirming -> idle on cancel, clearing the reason', () => {
        const confirming = reduce([
            { type: 'TARGET_LOADED', target },
            { type: 'OPEN_CONFIRM' },
            { type: 'SET_REASON', reason: 'why' },
        ]);
        expect(confirming.phase).toBe('confirming');
        expect(confirming.reason).toBe('why');
        const cancelled = runIngestionReducer(confirming, { type: 'CANCEL' });
        expect(cancelled.phase).toBe('idle');
        expect(cancelled.reason).toBe('');
    });

    it('follows a run to success', () => {
        let state = reduce([
            { type: 'TARGET_LOADED', target },
            { type: 'OPEN_CONFIRM' },
            { type: 'CONFIRM' },
        ]);
        expect(state.phase).toBe('starting');
        expect(isBusy(state)).toBe(true);
        state = reduce([{ type: 'START_SUCCEEDED', runId: 'r1' }], state);
        expect(state).toMatchObject({ phase: 'following', runId: 'r1', runState: 'requested' });
        expect(isBusy(state)).toBe(true);
        state = reduce([{ type: 'RUN_UPDATED', run: run('running') }], state);
        expect(state).toMatchObject({ phase: 'following', runState: 'running', polls: 1 });
        state = reduce([{ type: 'RUN_UPDATED', run: run('succeeded', { durationMs: 1200 }) }], state);
        expect(state).toMatchObject({ phase: 'succeeded', runState: 'succeeded', lastError: null, polls: 2 });
        expect(isBusy(state)).toBe(false);
        expect(isVisible(state)).toBe(true);
    });

    it('records the message of a failed run', () => {
        const state = reduce([
            { type: 'TARGET_LOADED', target },
            { type: 'OPEN_CONFIRM' },
            { type: 'CONFIRM' },
            { type: 'START_SUCCEEDED', runId: 'r1' },
            { type: 'RUN_UPDATED', run: run('failed', { message: 'Lambda raised KeyError' }) },
        ]);
        expect(state).toMatchObject({ phase: 'failed', lastError: 'Lambda raised KeyError' });
    });

    it('returns to idle with the error when the start fails', () => {
        const state = reduce([
            { type: 'TARGET_LOADED', target },
            { type: 'OPEN_CONFIRM' },
            { type: 'CONFIRM' },
            { type: 'START_FAILED', error: 'nope' },
        ]);
        expect(state).toMatchObject({ phase: 'idle', lastError: 'nope', runId: null });
    });

    it('ignores updates for another run and actions out of order', () => {
        const following = reduce([
            { type: 'TARGET_LOADED', target },
            { type: 'OPEN_CONFIRM' },
            { type: 'CONFIRM' },
            { type: 'START_SUCCEEDED', runId: 'r1' },
        ]);
        expect(runIngestionReducer(following, { type: 'RUN_UPDATED', run: { ...run('failed'), runId: 'other' } })).toBe(
            following,
        );
        expect(runIngestionReducer(following, { type: 'OPEN_CONFIRM' })).toBe(following);
        expect(runIngestionReducer(following, { type: 'CONFIRM' })).toBe(following);
        const idle = reduce([{ type: 'TARGET_LOADED', target }]);
        expect(runIngestionReducer(idle, { type: 'START_SUCCEEDED', runId: 'x' })).toBe(idle);
        expect(runIngestionReducer(idle, { type: 'TARGET_LOADED', target })).toBe(idle);
    });

    it('marks a run it can no longer follow as lost, and keeps the last result when a new dialog is cancelled', () => {
        const lost = reduce([
            { type: 'TARGET_LOADED', target },
            { type: 'OPEN_CONFIRM' },
            { type: 'CONFIRM' },
            { type: 'START_SUCCEEDED', runId: 'r1' },
            { type: 'POLL_FAILED' },
            { type: 'FOLLOW_LOST', error: 'timed out' },
        ]);
        expect(lost).toMatchObject({ phase: 'lost', lastError: 'timed out', polls: 1 });
        const back = reduce([{ type: 'OPEN_CONFIRM' }, { type: 'CANCEL' }], lost);
        expect(back.phase).toBe('lost');
    });

    it('RESET starts over for a new dataset', () => {
        const other = 'urn:li:dataset:(urn:li:dataPlatform:hive,db.other,PROD)';
        const state = reduce([{ type: 'TARGET_LOADED', target }, { type: 'RESET', datasetUrn: other }]);
        expect(state).toEqual(initialRunIngestionState(other));
    });
});

describe('runIngestionReducer: active runs and cancel', () => {
    const following = () =>
        reduce([{ type: 'TARGET_LOADED', target }, { type: 'OPEN_CONFIRM' }, { type: 'CONFIRM' }, { type: 'START_SUCCEEDED', runId: 'r1' }]);

    it('follows the active run named by the target instead of going idle', () => {
        const state = reduce([
            {
                type: 'TARGET_LOADED',
                target: { ...target, activeRun: { runId: 'a1', state: 'running', startTimeMs: 5, requestedBy: 'urn:li:corpuser:jdoe' } },
            },
        ]);
        expect(state).toMatchObject({ phase: 'following', runId: 'a1', runState: 'running', adopted: true, cancel: 'none' });
        expect(state.run).toMatchObject({ runId: 'a1', datasetUrn: URN, requestedBy: 'urn:li:corpuser:jdoe', startTimeMs: 5 });
        expect(isBusy(state)).toBe(true);
        // Not runnable: hidden, active run or not. A finished "active" run is not followed.
        expect(
            reduce([{ type: 'TARGET_LOADED', target: { ...target, canRun: false, activeRun: { runId: 'a1', state: 'running' } } }]).phase,
        ).toBe('hidden');
        expect(
            reduce([{ type: 'TARGET_LOADED', target: { ...target, activeRun: { runId: 'a1', state: 'succeeded' } } }]).phase,
        ).toBe('idle');
    });

    it('marks a run returned by an already-active start as adopted', () => {
        const state = reduce([
            { type: 'TARGET_LOADED', target },
            { type: 'OPEN_CONFIRM' },
            { type: 'CONFIRM' },
            { type: 'START_SUCCEEDED', runId: 'a1', alreadyActive: true },
        ]);
        expect(state).toMatchObject({ phase: 'following', runId: 'a1', adopted: true });
        expect(following().adopted).toBe(false);
    });

    it('switches to the run a DUPLICATE run names', () => {
        const state = runIngestionReducer(following(), {
            type: 'RUN_UPDATED',
            run: run('cancelled', { duplicateOf: 'a1' }),
        });
        expect(state).toMatchObject({ phase: 'following', runId: 'a1', run: null, runState: 'requested', adopted: true });
        // Updates for the old run are now ignored; the new one is followed.
        expect(runIngestionReducer(state, { type: 'RUN_UPDATED', run: run('failed') })).toBe(state);
        expect(runIngestionReducer(state, { type: 'RUN_UPDATED', run: run('succeeded', { runId: 'a1' }) }).phase).toBe(
            'succeeded',
        );
    });

    it('ends cancelled on a cancelled state, and a new run can be started', () => {
        const state = runIngestionReducer(following(), { type: 'RUN_UPDATED', run: run('cancelled') });
        expect(state).toMatchObject({ phase: 'cancelled', lastError: null, cancel: 'none' });
        expect(isBusy(state)).toBe(false);
        expect(runIngestionReducer(state, { type: 'OPEN_CONFIRM' }).phase).toBe('confirming');
        const back = reduce([{ type: 'OPEN_CONFIRM' }, { type: 'CANCEL' }], state);
        expect(back.phase).toBe('cancelled');
    });

    it('walks the cancel steps only while the run is cancellable', () => {
        const notYet = following();
        expect(canCancel(notYet)).toBe(false); // cancellable unknown until a status arrives
        expect(runIngestionReducer(notYet, { type: 'CANCEL_RUN_OPEN' })).toBe(notYet);
        const sync = runIngestionReducer(notYet, { type: 'RUN_UPDATED', run: run('running', { cancellable: false }) });
        expect(canCancel(sync)).toBe(false);
        const running = runIngestionReducer(notYet, { type: 'RUN_UPDATED', run: run('running', { cancellable: true }) });
        expect(canCancel(running)).toBe(true);
        const confirming = runIngestionReducer(running, { type: 'CANCEL_RUN_OPEN' });
        expect(confirming.cancel).toBe('confirming');
        expect(canCancel(confirming)).toBe(false);
        expect(runIngestionReducer(confirming, { type: 'CANCEL_RUN_DISMISS' }).cancel).toBe('none');
        const sending = runIngestionReducer(confirming, { type: 'CANCEL_RUN_CONFIRM' });
        expect(sending.cancel).toBe('sending');
        expect(runIngestionReducer(sending, { type: 'CANCEL_RUN_DISMISS' })).toBe(sending);
        const requested = runIngestionReducer(sending, { type: 'CANCEL_RUN_SENT' });
        expect(requested.cancel).toBe('requested');
        expect(runIngestionReducer(requested, { type: 'RUN_UPDATED', run: run('cancelled') })).toMatchObject({
            phase: 'cancelled',
            cancel: 'none',
        });
        const refused = runIngestionReducer(sending, { type: 'CANCEL_RUN_FAILED', notCancellable: true });
        expect(refused.cancel).toBe('none');
        expect(refused.run?.cancellable).toBe(false);
        expect(canCancel(refused)).toBe(false);
        const retry = runIngestionReducer(sending, { type: 'CANCEL_RUN_FAILED' });
        expect(canCancel(retry)).toBe(true);
        // Out of order: no cancel outside following.
        const idle = reduce([{ type: 'TARGET_LOADED', target }]);
        expect(runIngestionReducer(idle, { type: 'CANCEL_RUN_OPEN' })).toBe(idle);
        expect(runIngestionReducer(idle, { type: 'CANCEL_RUN_SENT' })).toBe(idle);
        expect(runIngestionReducer(requested, { type: 'FOLLOW_LOST', error: 'x' }).cancel).toBe('none');
    });
});

describe('backoffDelay', () => {
    it('doubles from 1 s and caps at 10 s', () => {
        expect([0, 1, 2, 3, 4, 5, 20, 100].map((n) => backoffDelay(n))).toEqual([
            1000, 2000, 4000, 8000, 10000, 10000, 10000, 10000,
        ]);
    });

    it('takes other bounds', () => {
        expect([0, 1, 2, 3].map((n) => backoffDelay(n, 100, 250))).toEqual([100, 200, 250, 250]);
    });
});
