import { vi } from 'vitest';

import type { FetchLike } from '../../src/api';

export const DATASET_URN = 'urn:li:dataset:(urn:li:dataPlatform:hive,analytics.orders,PROD)';
export const RUN_ID = 'lt-20261125T205743123Z-k3f9a1c2b7';

export interface RecordedCall {
    url: string;
    method: string;
    body: unknown;
    credentials?: RequestCredentials;
    headers: Record<string, string>;
    /** `Date.now()` when the call was made (fake timers make this exact). */
    at: number;
}

type Reply = { status: number; body?: unknown; raw?: string } | Error | 'hang';
type Handler = (call: RecordedCall) => Reply;

export function json(status: number, body?: unknown): Reply {
    return { status, body };
}

export function apiError(status: number, error: string, message: string): Reply {
    return { status, body: { status: 'failed', error, message } };
}

export function runStatus(state: string, extra: Record<string, unknown> = {}): Reply {
    return json(200, {
        runId: RUN_ID,
        datasetUrn: DATASET_URN,
        jobUrn: null,
        state,
        datahubStatus:
            state === 'succeeded'
                ? 'SUCCESS'
                : state === 'failed'
                  ? 'FAILURE'
                  : state === 'cancelled'
                    ? 'CANCELLED'
                    : 'RUNNING',
        requestedAt: 1764100000000,
        requestedBy: 'urn:li:corpuser:datahub',
        startTimeMs: 1764100001000,
        durationMs: null,
        message: null,
        cancellable: state === 'requested' || state === 'running',
        duplicateOf: null,
        ...extra,
    });
}

export const targetOk = json(200, {
    datasetUrn: DATASET_URN,
    available: true,
    canRun: true,
    label: 'Orders nightly load',
    reason: null,
});

export const startedOk = json(202, { runId: RUN_ID, status: 'started', message: 'Run requested', alreadyActive: false });

export const OTHER_RUN_ID = 'lt-20261125T205001000Z-aa11bb22cc';

/** `POST /run` while a run of the same dataset and target is active: 200 with that run. */
export const alreadyActiveReply = json(200, {
    runId: OTHER_RUN_ID,
    status: 'started',
    alreadyActive: true,
    message: 'A run of this dataset is already in progress (started by jdoe).',
});

/** `GET /targets` naming a run already in progress. */
export function targetWithActiveRun(state = 'running', runId = OTHER_RUN_ID): Reply {
    return json(200, {
        datasetUrn: DATASET_URN,
        available: true,
        canRun: true,
        label: 'Orders nightly load',
        reason: null,
        activeRun: { runId, state, startTimeMs: 1764100001000, requestedBy: 'urn:li:corpuser:jdoe' },
    });
}

export const cancellingOk = json(202, { runId: RUN_ID, status: 'cancelling', message: 'Cancelling the run.' });

/**
 * A fetch double for the three api routes. Each route takes a list of replies used in order; the last one repeats.
 */
type Route = 'targets' | 'run' | 'runs' | 'cancel' | 'list' | 'plan';

/**
 * Routes: `targets` GET /targets, `run` POST /run, `runs` GET /runs/{id}, `cancel` POST /runs/{id}/cancel,
 * `list` GET /runs?limit=N, `plan` POST /plan.
 */
export function fakeApi(routes: Partial<Record<Route, Reply[] | Handler>>) {
    const calls: RecordedCall[] = [];
    const counters: Record<Route, number> = { targets: 0, run: 0, runs: 0, cancel: 0, list: 0, plan: 0 };

    const pick = (name: Route, call: RecordedCall): Reply => {
        const route = routes[name];
        if (!route) return apiError(404, 'not_found', `no route ${name}`);
        if (typeof route === 'function') return route(call);
        const index = Math.min(counters[name], route.length - 1);
        counters[name] += 1;
        return route[index];
    };

    const fetchImpl = vi.fn<FetchLike>(async (input, init = {}) => {
        const url = String(input);
        const headers = { ...((init.headers as Record<string, string>) ?? {}) };
        const call: RecordedCall = {
            url,
            method: init.method ?? 'GET',
            body: typeof init.body === 'string' ? JSON.parse(init.body) : undefined,
            credentials: init.credentials,
            headers,
            at: Date.now(),
        };
        calls.push(call);
        const path = url.split('?')[0];
        const route = routeOf(path);
        const reply: Reply = route ? pick(route, call) : apiError(404, 'not_found', 'unknown route');

        if (reply === 'hang') {
            return new Promise<Response>((_resolve, reject) => {
                init.signal?.addEventListener('abort', () =>
                    reject(Object.assign(new Error('aborted'), { name: 'AbortError' })),
                );
            });
        }
        if (reply instanceof Error) throw reply;
        const text = reply.raw ?? (reply.body === undefined ? '' : JSON.stringify(reply.body));
        // A minimal Response: what the client reads, and nothing that needs real timers (fake timers in tests).
        const status = reply.status;
        return {
            ok: status >= 200 && status < 300,
            status,
            statusText: '',
            text: async () => text,
            json: async () => JSON.parse(text),
        } as unknown as Response;
    });

    const callsTo = (route: Route) => calls.filter((c) => routeOf(c.url.split('?')[0]) === route);

    return { fetchImpl, calls, callsTo };
}

function routeOf(path: string): Route | null {
    if (path.endsWith('/api/ingestion/targets')) return 'targets';
    if (path.endsWith('/api/ingestion/run')) return 'run';
    if (path.endsWith('/api/ingestion/plan')) return 'plan';
    if (path.endsWith('/api/ingestion/runs')) return 'list';
    if (/\/api\/ingestion\/runs\/[^/]+\/cancel$/.test(path)) return 'cancel';
    if (path.includes('/api/ingestion/runs/')) return 'runs';
    return null;
}
