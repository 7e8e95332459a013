import { Tag } from 'antd';

import { IngestionApiClient, IngestionApiError, RunSummary, describeError } from '../../src/api';

export type RunsLoadError = { kind: 'unsupported' | 'failed'; text: string };

export type RunsResult = { ok: true; runs: RunSummary[] } | { ok: false; error: RunsLoadError };

/**
 * `GET /api/ingestion/runs?limit=N`, newest first. An api without the list answers 404 (or 405): that is told apart
 * from a failure, so an older api shows "not available" instead of an error.
 */
export async function loadRuns(client: IngestionApiClient, limit: number, signal?: AbortSignal): Promise<RunsResult> {
    try {
        const runs = await client.listRuns(limit, signal);
        return { ok: true, runs };
    } catch (error) {
        // No such route (an api from before the list existed): 404, or 405 where only another method is routed.
        if (error instanceof IngestionApiError && (error.status === 404 || error.status === 405)) {
            return { ok: false, error: { kind: 'unsupported', text: 'This version of the ingestion api does not list runs.' } };
        }
        return { ok: false, error: { kind: 'failed', text: describeError(error, 'Could not load the runs') } };
    }
}

const STATE_COLORS: Record<string, string> = {
    requested: 'default',
    running: 'processing',
    succeeded: 'success',
    failed: 'error',
    cancelled: 'warning',
};

const STATE_LABELS: Record<string, string> = {
    requested: 'Requested',
    running: 'Running',
    succeeded: 'Succeeded',
    failed: 'Failed',
    cancelled: 'Cancelled',
};

export function StateTag({ state }: { state: string }) {
    return (
        <Tag color={STATE_COLORS[state] ?? 'default'} data-state={state}>
            {STATE_LABELS[state] ?? state}
        </Tag>
    );
}

export function isActive(state: string): boolean {
    return state === 'requested' || state === 'running';
}

export function formatTime(ms: number | null | undefined): string {
    if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
    return new Date(ms).toLocaleString();
}

/** `urn:li:corpuser:jdoe` -> `jdoe`. */
export function userName(urn: string | null | undefined): string {
    if (!urn) return '—';
    const match = /^urn:li:corpuser:(.+)$/.exec(urn);
    return match ? match[1] : urn;
}
