/**
 * Client for this project's ingestion api (see docs/contract.md, "HTTP api").
 *
 * Every call is same-origin, sends the DataHub session cookie (`credentials: 'include'`) and speaks JSON.
 * Errors always come back as `{status: "failed", error: "<code>", message: "<human text>"}`; they are turned
 * into an `IngestionApiError` whose `kind` tells the UI how to present them.
 */

import type { ParameterSchema, ParameterValue } from './parameters';
import type { ChildRun, UpstreamPlan } from './upstream';

export type RunState = 'requested' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export const TERMINAL_RUN_STATES: ReadonlyArray<RunState> = ['succeeded', 'failed', 'cancelled'];

/** A run of this dataset and target that has not ended yet (`GET /targets` names it, so a page load shows it). */
export interface ActiveRun {
    runId: string;
    state: RunState;
    startTimeMs?: number | null;
    requestedBy?: string | null;
}

/** The dataset's newest run on DataHub's Runs tab (`GET /targets` reads it, so a page load shows it). */
export interface LastRunInfo {
    runId: string;
    state: RunState;
    startTimeMs?: number | null;
    finishedAtMs?: number | null;
    requestedBy?: string | null;
    /** The values it ran with, when the target takes parameters ("run again with the same parameters"). */
    parameters?: Record<string, unknown> | null;
}

export interface IngestionTarget {
    datasetUrn: string;
    /** A target is mapped for this dataset. */
    available: boolean;
    /** Available and the caller may run it. */
    canRun: boolean;
    /** The target's display label only (never a function name or ARN). */
    label: string | null;
    reason?: string | null;
    /** The run of this dataset and target still in progress, if any. */
    activeRun?: ActiveRun | null;
    /** The dataset's last run, from DataHub's run history. */
    lastRun?: LastRunInfo | null;
    /** The run's parameters as a form (null: the target takes none). */
    parameters?: ParameterSchema | null;
}

export interface RunStarted {
    runId: string;
    status: 'started';
    message?: string | null;
    /** True when no new run was started: `runId` is the run of this dataset and target already in progress. */
    alreadyActive?: boolean;
    /** "Run with upstream": the plan the api runs (`runId` is then the parent run). */
    plan?: UpstreamPlan | null;
}

/** "Run with upstream" on `POST /run`: run the mapped upstream closure first, in waves (a parent run). */
export interface UpstreamRunOptions {
    withUpstream: true;
    /** How many lineage hops to follow; left out: the api's default (the plan answer says which it used). */
    maxDepth?: number | null;
}

export interface RunCancelling {
    runId: string;
    status: 'cancelling';
    message?: string | null;
}

/** One row of `GET /api/ingestion/runs?limit=N` (recent runs across datasets, newest first). */
export interface RunSummary {
    runId: string;
    datasetUrn: string;
    state: RunState;
    startTimeMs?: number | null;
    requestedBy?: string | null;
}

export interface RunStatus {
    runId: string;
    datasetUrn: string;
    jobUrn?: string | null;
    state: RunState;
    datahubStatus?: string | null;
    requestedAt?: number | null;
    requestedBy?: string | null;
    startTimeMs?: number | null;
    durationMs?: number | null;
    message?: string | null;
    /** The run is active and its target can be stopped (Step Functions, or a run not started yet). */
    cancellable?: boolean;
    /** Set when this run ended DUPLICATE because another run of the same dataset and target was active. */
    duplicateOf?: string | null;
    /** The values the run was started with (defaults applied), when its target takes parameters. */
    parameters?: Record<string, unknown> | null;
    /** A "Run with upstream" parent run: one child run per planned dataset, with its wave. */
    children?: ChildRun[] | null;
}

export type IngestionErrorKind =
    | 'unauthenticated' // 401
    | 'forbidden' // 403
    | 'not_found' // 404
    | 'invalid_request' // 400
    | 'no_target' // 422
    | 'conflict' // 409 (e.g. a run that cannot be cancelled)
    | 'unavailable' // 502 / 503 / 504
    | 'http' // any other 4xx / 5xx
    | 'network' // fetch itself failed (offline, DNS, connection refused, CORS, ...)
    | 'bad_response'; // 2xx whose body is not the expected JSON

export class IngestionApiError extends Error {
    readonly kind: IngestionErrorKind;

    /** HTTP status, when the server answered. */
    readonly status?: number;

    /** The api's error code (`error` field), e.g. `dataset_not_found`. */
    readonly code?: string;

    /** The api's human text (`message` field), when it sent one. */
    readonly serverMessage?: string;

    constructor(
        kind: IngestionErrorKind,
        message: string,
        details: { status?: number; code?: string; serverMessage?: string } = {},
    ) {
        super(message);
        this.name = 'IngestionApiError';
        this.kind = kind;
        this.status = details.status;
        this.code = details.code;
        this.serverMessage = details.serverMessage;
    }
}

/** Errors worth retrying while following a run: the run itself is not affected by them. */
export function isTransientError(error: unknown): boolean {
    return (
        error instanceof IngestionApiError &&
        (error.kind === 'network' || error.kind === 'unavailable' || (error.kind === 'http' && (error.status ?? 0) >= 500))
    );
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** Maps an absolute app path ("/api/...") to the URL the browser must call (DataHub: `resolveRuntimePath`). */
export type PathResolver = (path: string) => string;

export interface IngestionApiClient {
    getTarget(datasetUrn: string, signal?: AbortSignal): Promise<IngestionTarget>;
    startRun(
        datasetUrn: string,
        reason?: string,
        signal?: AbortSignal,
        parameters?: Record<string, ParameterValue> | null,
        upstream?: UpstreamRunOptions | null,
    ): Promise<RunStarted>;
    /** `POST /plan`: the mapped upstream closure of the dataset, in the waves a "Run with upstream" would run. */
    planUpstream(datasetUrn: string, maxDepth?: number | null, signal?: AbortSignal): Promise<UpstreamPlan>;
    getRun(runId: string, signal?: AbortSignal): Promise<RunStatus>;
    cancelRun(runId: string, signal?: AbortSignal): Promise<RunCancelling>;
    listRuns(limit: number, signal?: AbortSignal): Promise<RunSummary[]>;
}

export interface IngestionApiClientOptions {
    /** Defaults to the identity (api served at the site root). */
    resolvePath?: PathResolver;
    /** Defaults to the global `fetch`. */
    fetchImpl?: FetchLike;
}

export const API_PREFIX = '/api/ingestion';

function kindForStatus(status: number): IngestionErrorKind {
    if (status === 401) return 'unauthenticated';
    if (status === 403) return 'forbidden';
    if (status === 404) return 'not_found';
    if (status === 400) return 'invalid_request';
    if (status === 422) return 'no_target';
    if (status === 409) return 'conflict';
    if (status === 502 || status === 503 || status === 504) return 'unavailable';
    return 'http';
}

async function readJson(response: Response): Promise<unknown> {
    const text = await response.text();
    if (!text) return undefined;
    try {
        return JSON.parse(text);
    } catch {
        return undefined;
    }
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function stringField(record: Record<string, unknown> | undefined, field: string): string | undefined {
    const value = record?.[field];
    return typeof value === 'string' && value.trim() ? value : undefined;
}

export function createIngestionApiClient(options: IngestionApiClientOptions = {}): IngestionApiClient {
    const resolvePath: PathResolver = options.resolvePath ?? ((path) => path);
    const fetchImpl: FetchLike | undefined =
        options.fetchImpl ?? (typeof fetch === 'function' ? (input, init) => fetch(input, init) : undefined);

    async function request<T>(path: string, init: RequestInit, validate: (body: Record<string, unknown>) => boolean) {
        if (!fetchImpl) {
            throw new IngestionApiError('network', 'No fetch implementation is available.');
        }
        let response: Response;
        try {
            response = await fetchImpl(path, {
                credentials: 'include',
                ...init,
                headers: { Accept: 'application/json', ...(init.headers as Record<string, string> | undefined) },
            });
        } catch (error) {
            if ((error as { name?: string })?.name === 'AbortError') throw error;
            throw new IngestionApiError('network', (error as Error)?.message || 'Network error');
        }
        const body = asRecord(await readJson(response));
        if (!response.ok) {
            const serverMessage = stringField(body, 'message');
            const code = stringField(body, 'error');
            throw new IngestionApiError(
                kindForStatus(response.status),
                serverMessage ?? `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`,
                { status: response.status, code, serverMessage },
            );
        }
        if (!body || !validate(body)) {
            throw new IngestionApiError('bad_response', `Unexpected response from ${path}`, {
                status: response.status,
            });
        }
        return body as unknown as T;
    }

    return {
        getTarget(datasetUrn, signal) {
            const url = `${resolvePath(`${API_PREFIX}/targets`)}?datasetUrn=${encodeURIComponent(datasetUrn)}`;
            return request<IngestionTarget>(
                url,
                { method: 'GET', signal },
                (body) => typeof body.available === 'boolean' && typeof body.canRun === 'boolean',
            );
        },
        startRun(datasetUrn, reason, signal, parameters, upstream) {
            const payload: {
                datasetUrn: string;
                reason?: string;
                parameters?: Record<string, ParameterValue>;
                withUpstream?: true;
                maxDepth?: number;
            } = {
                datasetUrn,
            };
            const trimmed = reason?.trim();
            if (trimmed) payload.reason = trimmed;
            if (parameters) payload.parameters = parameters;
            if (upstream?.withUpstream) {
                payload.withUpstream = true;
                // The depth of the plan the user saw, so the run is that plan.
                if (typeof upstream.maxDepth === 'number') payload.maxDepth = upstream.maxDepth;
            }
            return request<RunStarted>(
                resolvePath(`${API_PREFIX}/run`),
                {
                    method: 'POST',
                    signal,
                    headers: { 'Content-Type': 'application/json' },
                    body: JSON.stringify(payload),
                },
                (body) => typeof body.runId === 'string' && body.runId.length > 0,
            );
        },
        planUpstream(datasetUrn, maxDepth, signal) {
            const payload: { datasetUrn: string; maxDepth?: number } = { datasetUrn };
            if (typeof maxDepth === 'number') payload.maxDepth = maxDepth;
            return request<UpstreamPlan>(
                resolvePath(`${API_PREFIX}/plan`),
                {
                    method: 'POST',
                    signal,
                    headers: { 'Content-Type': 'application/json' },
                    body: JSON.stringify(payload),
                },
                isUpstreamPlan,
            );
        },
        getRun(runId, signal) {
            return request<RunStatus>(
                resolvePath(`${API_PREFIX}/runs/${encodeURIComponent(runId)}`),
                { method: 'GET', signal },
                (body) => typeof body.state === 'string',
            );
        },
        cancelRun(runId, signal) {
            return request<RunCancelling>(
                resolvePath(`${API_PREFIX}/runs/${encodeURIComponent(runId)}/cancel`),
                // No body; the JSON content type keeps a cookie-authenticated POST same-origin, as for /run.
                { method: 'POST', signal, headers: { 'Content-Type': 'application/json' }, body: '{}' },
                (body) => typeof body.runId === 'string' && body.runId.length > 0,
            );
        },
        listRuns(limit, signal) {
            const url = `${resolvePath(`${API_PREFIX}/runs`)}?limit=${encodeURIComponent(String(limit))}`;
            return request<{ runs: RunSummary[] }>(url, { method: 'GET', signal }, (body) =>
                Array.isArray(body.runs),
            ).then((body) => body.runs.filter((run) => !!run && typeof run.runId === 'string'));
        },
    };
}

/** The shape `POST /plan` promises: waves of `{datasetUrn}` rows, a skipped list, a count. */
function isUpstreamPlan(body: Record<string, unknown>): boolean {
    const rowsOk = (rows: unknown) =>
        Array.isArray(rows) && rows.every((row) => !!row && typeof (row as { datasetUrn?: unknown }).datasetUrn === 'string');
    return (
        Array.isArray(body.waves) &&
        body.waves.every(rowsOk) &&
        (body.skipped === undefined || body.skipped === null || rowsOk(body.skipped))
    );
}

/** The text a person sees for a failed call. `action` says what failed, e.g. "Could not start the ingestion run". */
export function describeError(error: unknown, action: string): string {
    if (!(error instanceof IngestionApiError)) {
        return `${action}: ${(error as Error)?.message || 'unexpected error'}.`;
    }
    switch (error.kind) {
        case 'unauthenticated':
            return 'Your DataHub session has expired. Please sign in again.';
        case 'forbidden':
            return `You are not allowed to run this ingestion${error.serverMessage ? `: ${error.serverMessage}` : '.'}`;
        case 'network':
            return `${action}: the ingestion service could not be reached. Check your connection and try again.`;
        case 'bad_response':
            return `${action}: the ingestion service sent an unexpected response.`;
        default:
            return `${action}: ${error.serverMessage ?? error.message}`;
    }
}
