import { Alert, Button, Checkbox, Input, InputNumber, Modal, Spin, Typography } from 'antd';
import { ReactNode, useEffect, useMemo, useRef, useState } from 'react';

import { LastRun, RunAgainLink } from './LastRun';
import { ParametersForm } from './ParametersForm';
import { FetchLike, PathResolver, createIngestionApiClient } from './api';
import { FormValues, checkForm, initialValues } from './parameters';
import { Phase, RunIngestionState } from './runIngestionReducer';
import { Toaster, antdToaster } from './toast';
import { UpstreamPlanView, UpstreamProgress } from './UpstreamPlan';
import { childProgress, planRunCount } from './upstream';
import { PollingOptions, useRunIngestion } from './useRunIngestion';
import { useUpstreamPlan } from './useUpstreamPlan';

export interface RunIngestionButtonProps extends PollingOptions {
    /** URN of the dataset whose ingestion is run. */
    datasetUrn: string;
    /** Name shown in the confirmation dialog; defaults to the name inside the URN. */
    datasetName?: string;
    /** Maps "/api/ingestion/..." to the URL to call (DataHub: `resolveRuntimePath`). Defaults to the identity. */
    resolvePath?: PathResolver;
    /** For tests; defaults to the global `fetch`. */
    fetchImpl?: FetchLike;
    /** Toast function; defaults to antd `message`, as DataHub's `showToastMessage`. */
    toast?: Toaster;
    className?: string;
    /** Drawn instead of nothing when the dataset has no target the user may run (default: nothing). */
    whenHidden?: ReactNode;
    /** Told about every phase change (e.g. to refresh a list of runs when one ends). */
    onPhaseChange?: (phase: Phase) => void;
}

export const REASON_MAX_LENGTH = 500;
/** The api's bound on `maxDepth` (1 to 5); its default (LAMBDA_TRIGGER_UPSTREAM_MAX_DEPTH) is in the plan answer. */
export const MAX_UPSTREAM_DEPTH = 5;

let nextId = 0;

/** `urn:li:dataset:(urn:li:dataPlatform:hive,db.table,PROD)` -> `db.table`. */
export function datasetNameFromUrn(urn: string): string {
    const match = /^urn:li:dataset:\(urn:li:dataPlatform:[^,]+,(.+),[^,()]+\)$/.exec(urn);
    return match ? match[1] : urn;
}

function formatDuration(ms: number | null | undefined): string | null {
    if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return null;
    const seconds = Math.round(ms / 1000);
    if (seconds < 60) return `${seconds}s`;
    const minutes = Math.floor(seconds / 60);
    return `${minutes}m ${seconds % 60}s`;
}

/**
 * The dataset's Runs tab in DataHub: its entity route `/dataset/<urn>/<tab name>`, the URN encoded as DataHub's
 * `urlEncodeUrn` does (datahub-web-react/src/app/entity/shared/utils.ts: only `%` `/` `?` `#` `[` `]`, `%` as
 * `{{encoded_percent}}`), so the link is the one DataHub draws and its router reads back.
 */
export function runsTabPath(datasetUrn: string, resolvePath?: PathResolver): string {
    const encoded = datasetUrn
        .replace(/%/g, '{{encoded_percent}}')
        .replace(/\//g, '%2F')
        .replace(/\?/g, '%3F')
        .replace(/#/g, '%23')
        .replace(/\[/g, '%5B')
        .replace(/\]/g, '%5D');
    const path = `/dataset/${encoded}/Runs`;
    return resolvePath ? resolvePath(path) : path;
}

/** `urn:li:corpuser:jdoe` -> `jdoe`. */
function actorName(urn: string | null | undefined): string | null {
    if (!urn) return null;
    const match = /^urn:li:corpuser:(.+)$/.exec(urn);
    return match ? match[1] : urn;
}

function statusText(state: RunIngestionState): { text: string; type?: 'success' | 'danger' | 'warning' | 'secondary' } | null {
    switch (state.phase) {
        case 'starting':
            return { text: 'Starting…', type: 'secondary' };
        case 'following': {
            if (state.cancel === 'sending' || state.cancel === 'requested') return { text: 'Cancelling…', type: 'secondary' };
            const text = state.runState === 'running' ? 'Running…' : 'Run requested…';
            // A run this page did not start: say whose it is.
            const by = state.adopted ? actorName(state.run?.requestedBy) : null;
            return { text: by ? `${text} (started by ${by})` : text, type: 'secondary' };
        }
        case 'succeeded': {
            const duration = formatDuration(state.run?.durationMs);
            return { text: `Last run succeeded${duration ? ` in ${duration}` : ''}`, type: 'success' };
        }
        case 'failed':
            return { text: `Last run failed: ${state.lastError}`, type: 'danger' };
        case 'cancelled':
            return { text: 'Last run cancelled', type: 'warning' };
        case 'lost':
            return { text: `Run status unknown: ${state.lastError}`, type: 'warning' };
        case 'idle':
        case 'confirming':
            return state.lastError ? { text: state.lastError, type: 'danger' } : null;
        default:
            return null;
    }
}

/**
 * "Run ingestion" for a dataset page. Draws nothing unless the api says the dataset has a target the current
 * user may run; then a button that asks for confirmation, starts the run and follows it to its final state.
 */
export function RunIngestionButton(props: RunIngestionButtonProps) {
    const { datasetUrn, datasetName, className } = props;

    // The client is created once; it reads the latest resolver/fetch through refs, so passing a new function on
    // every render does not refetch anything.
    const resolveRef = useRef(props.resolvePath);
    resolveRef.current = props.resolvePath;
    const fetchRef = useRef(props.fetchImpl);
    fetchRef.current = props.fetchImpl;
    const client = useMemo(
        () =>
            createIngestionApiClient({
                resolvePath: (path) => (resolveRef.current ? resolveRef.current(path) : path),
                fetchImpl: (input, init) => (fetchRef.current ? fetchRef.current(input, init) : fetch(input, init)),
            }),
        [],
    );
    const toastRef = useRef(props.toast ?? antdToaster);
    toastRef.current = props.toast ?? antdToaster;
    const toast = useMemo<Toaster>(() => (kind, content, seconds) => toastRef.current(kind, content, seconds), []);

    const idRef = useRef<string>();
    if (!idRef.current) {
        nextId += 1;
        idRef.current = `run-ingestion-${nextId}`;
    }
    const reasonId = `${idRef.current}-reason`;
    const statusId = `${idRef.current}-status`;
    const upstreamId = `${idRef.current}-upstream`;
    const depthId = `${idRef.current}-depth`;

    const {
        state,
        visible,
        busy,
        openConfirm,
        cancel,
        setReason,
        confirm,
        cancellable,
        openCancelRun,
        dismissCancelRun,
        confirmCancelRun,
    } = useRunIngestion({
        datasetUrn,
        client,
        toast,
        pollInitialDelayMs: props.pollInitialDelayMs,
        pollMaxDelayMs: props.pollMaxDelayMs,
        pollTimeoutMs: props.pollTimeoutMs,
    });

    // The parameter form (issue 22): filled with the schema's defaults each time the dialog opens; problems are
    // shown per field once it was touched, and all of them after a click on Run.
    const schema = state.target?.parameters ?? null;
    const [paramValues, setParamValues] = useState<FormValues>({});
    const [touched, setTouched] = useState<Record<string, boolean>>({});
    const [showAllErrors, setShowAllErrors] = useState(false);
    // "Run again with the same parameters": the values the dialog opens with (then back to the defaults).
    const prefill = useRef<Record<string, unknown> | null>(null);
    // The values this page last sent, offered again once that run has ended.
    const [lastSent, setLastSent] = useState<Record<string, unknown> | null>(null);
    useEffect(() => {
        if (state.phase === 'confirming' && schema) {
            setParamValues(initialValues(schema, prefill.current));
            prefill.current = null;
            setTouched({});
            setShowAllErrors(false);
        }
        // Reset only when the dialog opens, not on every poll of the target.
        // eslint-disable-next-line react-hooks/exhaustive-deps
    }, [state.phase === 'confirming']);
    const checked = schema ? checkForm(schema, paramValues) : null;
    const shownErrors = checked
        ? Object.fromEntries(Object.entries(checked.errors).filter(([name]) => showAllErrors || touched[name]))
        : {};
    const onRun = () => {
        if (!checked) return confirm();
        if (Object.keys(checked.errors).length) {
            setShowAllErrors(true);
            return undefined;
        }
        setLastSent(checked.parameters);
        return confirm(checked.parameters);
    };
    const runAgainWith = (parameters: Record<string, unknown>) => () => {
        prefill.current = parameters;
        openConfirm();
    };
    const ended = state.phase === 'succeeded' || state.phase === 'failed' || state.phase === 'cancelled';

    // "Run with upstream" (issue 21, item 5): off each time the dialog opens; while on, the plan is fetched and shown,
    // and Run starts exactly that plan (its depth is sent back). `shownPlan` names the datasets of the run that follows.
    const [withUpstream, setWithUpstream] = useState(false);
    const [maxDepth, setMaxDepth] = useState<number | null>(null);
    const planState = useUpstreamPlan({
        client,
        datasetUrn,
        enabled: withUpstream && state.phase === 'confirming',
        maxDepth,
    });
    const [shownPlan, setShownPlan] = useState(planState.plan);
    const [progressOpen, setProgressOpen] = useState(false);
    useEffect(() => {
        if (state.phase === 'confirming') {
            setWithUpstream(false);
            setMaxDepth(null);
        }
        // Reset only when the dialog opens (as the parameter form above).
        // eslint-disable-next-line react-hooks/exhaustive-deps
    }, [state.phase === 'confirming']);
    useEffect(() => {
        if (state.phase === 'confirming' && planState.plan) setShownPlan(planState.plan);
    }, [state.phase, planState.plan]);
    const upstreamWaiting = withUpstream && planState.status !== 'ready' && planState.status !== 'unsupported';
    const upstreamOn = withUpstream && planState.status === 'ready';
    const onConfirm = () => {
        if (upstreamWaiting) return undefined;
        if (!upstreamOn) {
            setShownPlan(null);
            return onRun();
        }
        // Each dataset of the plan runs its own mapped target with its defaults: the api takes no parameters here.
        setLastSent(null);
        return confirm(null, { withUpstream: true, maxDepth: planState.plan?.maxDepth ?? maxDepth });
    };
    const children = state.run?.children ?? null;
    const progress = childProgress(children);

    const phaseRef = useRef(props.onPhaseChange);
    phaseRef.current = props.onPhaseChange;
    useEffect(() => {
        phaseRef.current?.(state.phase);
    }, [state.phase]);

    if (!visible) return state.phase === 'hidden' && props.whenHidden !== undefined ? <>{props.whenHidden}</> : null;

    const label = state.target?.label || 'its configured target';
    const name = datasetName || datasetNameFromUrn(datasetUrn);
    const baseStatus = statusText(state);
    const status =
        baseStatus && progress.total > 0 && (state.phase === 'following' || ended)
            ? { ...baseStatus, text: `${baseStatus.text} · ${progress.done} of ${progress.total} runs done` }
            : baseStatus;
    const dialogOpen = state.phase === 'confirming' || state.phase === 'starting';
    const submitting = state.phase === 'starting';
    const cancelSending = state.cancel === 'sending';
    const showCancel = cancellable || (state.phase === 'following' && state.cancel !== 'none');

    return (
        <span
            className={className}
            data-testid="run-ingestion"
            data-phase={state.phase}
            style={{ display: 'inline-flex', alignItems: 'center', gap: 8, minWidth: 0 }}
        >
            <span
                id={statusId}
                role="status"
                aria-live="polite"
                data-testid="run-ingestion-status"
                style={{ minWidth: 0, maxWidth: 320, overflow: 'hidden', textOverflow: 'ellipsis', whiteSpace: 'nowrap' }}
                title={status?.text}
            >
                {status && <Typography.Text type={status.type}>{status.text}</Typography.Text>}
            </span>
            {schema && ended && lastSent && <RunAgainLink onClick={runAgainWith(lastSent)} parameters={lastSent} />}
            {!status && state.target?.lastRun && (
                // After a page load: the dataset's last run, from DataHub's run history (LastRun.tsx).
                <LastRun
                    run={state.target.lastRun}
                    href={runsTabPath(datasetUrn, resolveRef.current)}
                    onRunAgain={
                        schema && state.target.lastRun.parameters
                            ? runAgainWith(state.target.lastRun.parameters)
                            : undefined
                    }
                />
            )}
            <Button
                data-testid="run-ingestion-button"
                onClick={openConfirm}
                loading={busy}
                disabled={busy}
                aria-busy={busy}
                aria-haspopup="dialog"
                aria-describedby={status ? statusId : undefined}
            >
                {busy ? 'Ingestion running' : 'Run ingestion'}
            </Button>
            {progress.total > 0 && (state.phase === 'following' || ended) && (
                <Button
                    type="link"
                    data-testid="run-ingestion-progress"
                    onClick={() => setProgressOpen(true)}
                    aria-haspopup="dialog"
                    style={{ paddingLeft: 0, paddingRight: 0 }}
                >
                    Upstream runs ({progress.done}/{progress.total})
                </Button>
            )}
            {showCancel && (
                <Button
                    danger
                    data-testid="run-ingestion-cancel"
                    onClick={openCancelRun}
                    loading={cancelSending}
                    disabled={!cancellable}
                    aria-haspopup="dialog"
                >
                    {state.cancel === 'sending' || state.cancel === 'requested' ? 'Cancelling' : 'Cancel run'}
                </Button>
            )}
            <Modal
                open={state.phase === 'following' && (state.cancel === 'confirming' || cancelSending)}
                title="Cancel ingestion run"
                okText="Cancel run"
                cancelText="Keep running"
                onOk={confirmCancelRun}
                onCancel={cancelSending ? undefined : dismissCancelRun}
                confirmLoading={cancelSending}
                cancelButtonProps={{ disabled: cancelSending }}
                okButtonProps={{ danger: true, 'data-testid': 'run-ingestion-cancel-confirm' } as Record<string, unknown>}
                maskClosable={!cancelSending}
                closable={!cancelSending}
                centered
                destroyOnClose
            >
                <Typography.Paragraph>
                    Stop the ingestion run of <Typography.Text strong>{name}</Typography.Text> with{' '}
                    <Typography.Text strong>{label}</Typography.Text>
                    {progress.total > 0 ? ' and its upstream runs' : ''}?
                </Typography.Paragraph>
                <Typography.Paragraph type="secondary">
                    {progress.total > 0
                        ? 'Runs not started yet will not start; running jobs are asked to stop. Whatever was already loaded stays loaded.'
                        : 'The job is asked to stop; whatever it already loaded stays loaded.'}
                </Typography.Paragraph>
            </Modal>
            <Modal
                open={progressOpen && progress.total > 0}
                title="Run with upstream"
                onCancel={() => setProgressOpen(false)}
                footer={[
                    cancellable ? (
                        <Button
                            key="cancel-run"
                            danger
                            onClick={() => {
                                setProgressOpen(false);
                                openCancelRun();
                            }}
                        >
                            Cancel run
                        </Button>
                    ) : null,
                    <Button key="close" type="primary" data-testid="upstream-progress-close" onClick={() => setProgressOpen(false)}>
                        Close
                    </Button>,
                ]}
                centered
                destroyOnClose
            >
                <Typography.Paragraph data-testid="upstream-progress-status">
                    <Typography.Text strong>{name}</Typography.Text>: {status?.text ?? 'Run requested…'}
                </Typography.Paragraph>
                {children && <UpstreamProgress runs={children} plan={shownPlan} />}
            </Modal>
            <Modal
                open={dialogOpen}
                title="Run ingestion"
                okText={upstreamOn && shownPlan ? `Run all ${planRunCount(shownPlan)}` : 'Run'}
                cancelText="Cancel"
                onOk={onConfirm}
                onCancel={submitting ? undefined : cancel}
                confirmLoading={submitting}
                cancelButtonProps={{ disabled: submitting }}
                okButtonProps={
                    { 'data-testid': 'run-ingestion-confirm', disabled: upstreamWaiting } as Record<string, unknown>
                }
                maskClosable={!submitting}
                closable={!submitting}
                centered
                destroyOnClose
            >
                <Typography.Paragraph>
                    Start the ingestion of <Typography.Text strong>{name}</Typography.Text> with{' '}
                    <Typography.Text strong>{label}</Typography.Text>?
                </Typography.Paragraph>
                <Typography.Paragraph type="secondary" style={{ wordBreak: 'break-all', fontSize: 12 }}>
                    {datasetUrn}
                </Typography.Paragraph>
                {schema && upstreamOn && (
                    <Typography.Paragraph type="secondary" data-testid="upstream-no-parameters">
                        With upstream, every dataset runs its job with its default parameters.
                    </Typography.Paragraph>
                )}
                {schema && !(withUpstream && planState.status !== 'unsupported') && (
                    <ParametersForm
                        schema={schema}
                        values={paramValues}
                        errors={shownErrors}
                        idPrefix={idRef.current}
                        disabled={submitting}
                        onChange={(name, value) => {
                            setParamValues((previous) => ({ ...previous, [name]: value }));
                            setTouched((previous) => ({ ...previous, [name]: true }));
                        }}
                    />
                )}
                <div style={{ marginBottom: 12 }} data-testid="run-ingestion-upstream">
                    <Checkbox
                        id={upstreamId}
                        data-testid="run-ingestion-with-upstream"
                        checked={withUpstream && planState.status !== 'unsupported'}
                        disabled={submitting || planState.status === 'unsupported'}
                        onChange={(event) => setWithUpstream(event.target.checked)}
                    >
                        Run with upstream
                    </Checkbox>
                    <Typography.Paragraph type="secondary" style={{ fontSize: 12, margin: '2px 0 0 24px' }}>
                        First run the upstream datasets (from DataHub&apos;s lineage) that have a job, in waves.
                    </Typography.Paragraph>
                    {withUpstream && planState.status !== 'unsupported' && (
                        <div style={{ margin: '8px 0 0 24px' }}>
                            <label htmlFor={depthId} style={{ marginRight: 8 }}>
                                Levels upstream
                            </label>
                            <InputNumber
                                id={depthId}
                                data-testid="run-ingestion-depth"
                                min={1}
                                max={MAX_UPSTREAM_DEPTH}
                                precision={0}
                                size="small"
                                value={maxDepth ?? planState.plan?.maxDepth ?? shownPlan?.maxDepth ?? undefined}
                                disabled={submitting}
                                onChange={(value) => setMaxDepth(typeof value === 'number' ? value : null)}
                            />
                        </div>
                    )}
                    <div aria-live="polite" style={{ margin: '8px 0 0 24px' }}>
                        {withUpstream && planState.status === 'loading' && (
                            <span data-testid="upstream-plan-loading">
                                <Spin size="small" /> <Typography.Text type="secondary">Planning the upstream runs…</Typography.Text>
                            </span>
                        )}
                        {withUpstream && planState.status === 'ready' && planState.plan && (
                            <UpstreamPlanView plan={planState.plan} headingId={`${upstreamId}-plan`} />
                        )}
                        {planState.status === 'error' && planState.error && (
                            <Alert type="error" showIcon data-testid="upstream-plan-error" message={planState.error} />
                        )}
                        {planState.status === 'unsupported' && (
                            <Alert type="info" showIcon data-testid="upstream-plan-unsupported" message={planState.error} />
                        )}
                    </div>
                </div>
                <label htmlFor={reasonId} style={{ display: 'block', marginBottom: 4 }}>
                    Reason (optional)
                </label>
                <Input.TextArea
                    id={reasonId}
                    data-testid="run-ingestion-reason"
                    value={state.reason}
                    onChange={(event) => setReason(event.target.value)}
                    maxLength={REASON_MAX_LENGTH}
                    autoSize={{ minRows: 2, maxRows: 6 }}
                    disabled={submitting}
                    placeholder="Why is this run needed? Recorded with the run."
                />
            </Modal>
        </span>
    );
}

export default RunIngestionButton;
