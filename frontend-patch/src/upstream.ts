/**
 * "Run with upstream" (issue 21, item 5): the plan the api answers on `POST /api/ingestion/plan`, the children of a
 * parent run, and the pure helpers that turn them into what the dialog and the progress view show. No React, no I/O.
 */

/** One dataset of a wave. `name` is the api's display name (may be missing on an older or partial answer). */
export interface PlannedDataset {
    datasetUrn: string;
    name?: string | null;
}

export type SkipReason = 'unmapped' | 'too_deep' | 'cycle' | 'not_allowed';

/** An upstream dataset the run leaves out, and why. */
export interface SkippedUpstream {
    datasetUrn: string;
    reason: SkipReason | string;
    name?: string | null;
}

/** `POST /plan` answer: waves in run order, the last wave being the requested dataset. */
export interface UpstreamPlan {
    datasetUrn: string;
    maxDepth?: number | null;
    waves: PlannedDataset[][];
    skipped?: SkippedUpstream[] | null;
    /** How many runs the plan starts (all waves together). */
    runs?: number | null;
}

/** One child of a parent run (`GET /runs/{parent}` `children`). `status` is the child's run state, or a state
 *  of its own before it starts (e.g. `pending`). */
export interface ChildRun {
    runId?: string | null;
    datasetUrn: string;
    wave: number;
    status: string;
}

const SKIP_REASONS: Record<string, string> = {
    unmapped: 'no ingestion job is mapped for it',
    too_deep: 'further upstream than the depth limit',
    cycle: 'part of a lineage cycle',
    not_allowed: 'you may not run its job',
};

/** Why an upstream dataset is left out, in words. Unknown reasons are shown as the api sent them. */
export function describeSkipReason(reason: string): string {
    return SKIP_REASONS[reason] ?? reason;
}

/** The number of runs the plan starts: the api's count, else the datasets in its waves. */
export function planRunCount(plan: UpstreamPlan): number {
    if (typeof plan.runs === 'number' && Number.isFinite(plan.runs)) return plan.runs;
    return plan.waves.reduce((sum, wave) => sum + wave.length, 0);
}

/** `datasetUrn -> name` from a plan, so children (which carry only URNs) are shown by name. */
export function planNames(plan: UpstreamPlan | null | undefined): Map<string, string> {
    const names = new Map<string, string>();
    for (const wave of plan?.waves ?? []) {
        for (const row of wave) if (row.name) names.set(row.datasetUrn, row.name);
    }
    for (const row of plan?.skipped ?? []) if (row.name) names.set(row.datasetUrn, row.name);
    return names;
}

export interface ChildWave {
    /** 1-based, as shown ("Wave 1" runs first). */
    number: number;
    children: ChildRun[];
}

/**
 * Children grouped by wave, in run order. The api numbers waves by their index in the plan; a 0 among them means
 * 0-based numbering, shown from 1 so the first wave is "Wave 1" either way.
 */
export function childrenByWave(children: ChildRun[] | null | undefined): ChildWave[] {
    const list = (children ?? []).filter((child) => !!child && typeof child.datasetUrn === 'string');
    if (!list.length) return [];
    const offset = list.some((child) => child.wave === 0) ? 1 : 0;
    const groups = new Map<number, ChildRun[]>();
    for (const child of list) {
        const wave = Number.isFinite(child.wave) ? child.wave : 0;
        const group = groups.get(wave) ?? [];
        group.push(child);
        groups.set(wave, group);
    }
    return Array.from(groups.entries())
        .sort(([a], [b]) => a - b)
        .map(([wave, group]) => ({ number: wave + offset, children: group }));
}

/**
 * A child's status as one key. The api sends DataHub's execution-request statuses for children (`PENDING` before
 * the child's request is written or picked up, `RUNNING`, `SUCCESS`, `FAILURE`, `CANCELLED`, `TIMEOUT`, `ABORTED`,
 * `DUPLICATE`, and `SKIPPED` for a child never started because an earlier wave failed); the run states of
 * `GET /runs/{id}` (`requested`, `running`, `succeeded`, ...) are understood too.
 */
export type ChildState =
    | 'waiting'
    | 'requested'
    | 'running'
    | 'succeeded'
    | 'failed'
    | 'cancelled'
    | 'skipped'
    | 'timeout'
    | 'aborted'
    | 'duplicate'
    | 'unknown';

const CHILD_STATES: Record<string, ChildState> = {
    pending: 'waiting',
    waiting: 'waiting',
    queued: 'waiting',
    requested: 'requested',
    running: 'running',
    success: 'succeeded',
    succeeded: 'succeeded',
    failure: 'failed',
    failed: 'failed',
    cancelled: 'cancelled',
    canceled: 'cancelled',
    skipped: 'skipped',
    timeout: 'timeout',
    aborted: 'aborted',
    duplicate: 'duplicate',
};

export function childState(status: string | null | undefined): ChildState {
    return CHILD_STATES[String(status ?? '').toLowerCase()] ?? 'unknown';
}

const CHILD_FINAL: ReadonlyArray<ChildState> = ['succeeded', 'failed', 'cancelled', 'skipped', 'timeout', 'aborted', 'duplicate'];

/** How many children have ended (any final state), of how many. */
export function childProgress(children: ChildRun[] | null | undefined): { done: number; total: number } {
    const list = children ?? [];
    return { done: list.filter((child) => CHILD_FINAL.includes(childState(child.status))).length, total: list.length };
}

const CHILD_LABELS: Record<ChildState, string> = {
    waiting: 'Waiting',
    requested: 'Requested',
    running: 'Running',
    succeeded: 'Succeeded',
    failed: 'Failed',
    cancelled: 'Cancelled',
    skipped: 'Skipped',
    timeout: 'Timed out',
    aborted: 'Aborted',
    duplicate: 'Duplicate',
    unknown: '',
};

const CHILD_COLORS: Partial<Record<ChildState, string>> = {
    running: 'processing',
    succeeded: 'success',
    failed: 'error',
    timeout: 'error',
    aborted: 'error',
    cancelled: 'warning',
};

/** The state key, words and antd Tag colour for a child's status (an unknown status is shown as sent). */
export function childStatusLabel(status: string): { state: ChildState; text: string; color: string } {
    const state = childState(status);
    return { state, text: CHILD_LABELS[state] || status, color: CHILD_COLORS[state] ?? 'default' };
}
