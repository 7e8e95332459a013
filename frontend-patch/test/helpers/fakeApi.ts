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
        datahubStatus: state === 'succeeded' ? 'SUCCESS' : state === 'failed' ? 'FAILURE' : 'RUNNING',
        requestedAt: 1764100000000,
        requestedBy: 'urn:li:corpuser:datahub',
        startTimeMs: 1764100001000,
        durationMs: null,
        message: null,
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

export const startedOk = json(202, { runId: RUN_ID, status: 'started', message: 'Run requested' });

/**
 * A fetch double for the three api routes. Each route takes a list of replies used in order; the last one repeats.
 */
export function fakeApi(routes: { targets?: Reply[] | Handler; run?: Reply[] | Handler; runs?: Reply[] | Handler }) {
    const calls: RecordedCall[] = [];
    const counters = { targets: 0, run: 0, runs: 0 };

    const pick = (name: 'targets' | 'run' | 'runs', call: RecordedCall): Reply => {
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
        let reply: Reply;
        if (path.endsWith('/api/ingestion/targets')) reply = pick('targets', call);
        else if (path.endsWith('/api/ingestion/run')) reply = pick('run', call);
        else if (path.includes('/api/ingestion/runs/')) reply = pick('runs', call);
        else reply = apiError(404, 'not_found', 'unknown route');

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

    const callsTo = (suffix: 'targets' | 'run' | 'runs') =>
        calls.filter((c) => {
            const path = c.url.split('?')[0];
            if (suffix === 'runs') return path.includes('/api/ingestion/runs/');
            return path.endsWith(`/api/ingestion/${suffix}`);
        });

    return { fetchImpl, calls, callsTo };
}
