/**
 * Fetches the "Run with upstream" plan (`POST /api/ingestion/plan`) while the dialog's option is on, so the user
 * sees what would run before confirming. One request at a time: a new depth or a closed dialog aborts the last one.
 */
import { useEffect, useRef, useState } from 'react';

import { IngestionApiClient, IngestionApiError, describeError } from './api';
import { UpstreamPlan } from './upstream';

export type PlanStatus = 'off' | 'loading' | 'ready' | 'error' | 'unsupported';

export interface UpstreamPlanState {
    status: PlanStatus;
    plan: UpstreamPlan | null;
    /** What went wrong, in words (status `error` or `unsupported`). */
    error: string | null;
}

export const PLAN_UNSUPPORTED_TEXT =
    'This version of the ingestion api cannot run upstream datasets; only this dataset can be run.';

/**
 * An api from before "Run with upstream" has no `/plan` route: FastAPI answers 404 `not_found` (the api's code for
 * an unknown path) or 405. Any other 404 code (e.g. `dataset_not_found`) is a real answer and is shown as an error.
 */
export function isPlanUnsupported(error: unknown): boolean {
    if (!(error instanceof IngestionApiError)) return false;
    if (error.status === 405) return true;
    return error.status === 404 && (!error.code || error.code === 'not_found');
}

const OFF: UpstreamPlanState = { status: 'off', plan: null, error: null };

export function useUpstreamPlan(options: {
    client: IngestionApiClient;
    datasetUrn: string;
    enabled: boolean;
    maxDepth: number | null;
}): UpstreamPlanState {
    const { client, datasetUrn, enabled, maxDepth } = options;
    const [state, setState] = useState<UpstreamPlanState>(OFF);
    // Once the api said it has no planner, asking again on every toggle would only repeat the 404.
    const unsupported = useRef(false);

    useEffect(() => {
        if (!enabled) {
            setState(OFF);
            return undefined;
        }
        if (unsupported.current) {
            setState({ status: 'unsupported', plan: null, error: PLAN_UNSUPPORTED_TEXT });
            return undefined;
        }
        const controller = new AbortController();
        setState({ status: 'loading', plan: null, error: null });
        client
            .planUpstream(datasetUrn, maxDepth, controller.signal)
            .then((plan) => {
                if (controller.signal.aborted) return;
                setState({ status: 'ready', plan, error: null });
            })
            .catch((error) => {
                if (controller.signal.aborted || (error as { name?: string })?.name === 'AbortError') return;
                if (isPlanUnsupported(error)) {
                    unsupported.current = true;
                    setState({ status: 'unsupported', plan: null, error: PLAN_UNSUPPORTED_TEXT });
                    return;
                }
                setState({ status: 'error', plan: null, error: describeError(error, 'Could not plan the upstream runs') });
            });
        return () => controller.abort();
    }, [client, datasetUrn, enabled, maxDepth]);

    return state;
}
