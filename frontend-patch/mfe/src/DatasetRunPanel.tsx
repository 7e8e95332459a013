import { Alert, Table, Typography } from 'antd';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';

import { FetchLike, IngestionApiClient, RunSummary } from '../../src/api';
import { RunIngestionButton, datasetNameFromUrn } from '../../src/RunIngestionButton';
import { Phase } from '../../src/runIngestionReducer';
import { Toaster } from '../../src/toast';
import { RunsLoadError, StateTag, formatTime, loadRuns, userName } from './runsCommon';


export interface DatasetRunPanelProps {
    datasetUrn: string;
    client: IngestionApiClient;
    resolvePath: (path: string) => string;
    toast: Toaster;
    fetchImpl?: FetchLike;
    /** How many of the most recent runs (across datasets) to read to find this dataset's last runs. */
    scanLimit?: number;
    /** How many of this dataset's runs to show. */
    show?: number;
    pollTimeoutMs?: number;
}

/**
 * The `entity.detail.tab` panel: the Run ingestion button (the same component as the header patch: confirmation
 * with reason, live state, Cancel) and this dataset's last runs.
 */
export function DatasetRunPanel(props: DatasetRunPanelProps) {
    const { datasetUrn, client, scanLimit = 100, show = 10 } = props;
    const [runs, setRuns] = useState<RunSummary[] | null>(null);
    const [error, setError] = useState<RunsLoadError | null>(null);
    const inFlight = useRef<AbortController | null>(null);

    const refresh = useCallback(() => {
        inFlight.current?.abort();
        const controller = new AbortController();
        inFlight.current = controller;
        loadRuns(client, scanLimit, controller.signal).then((result) => {
            if (controller.signal.aborted) return;
            inFlight.current = null;
            if (result.ok) {
                setRuns(result.runs.filter((run) => run.datasetUrn === datasetUrn).slice(0, show));
                setError(null);
            } else {
                setError(result.error);
            }
        });
    }, [client, datasetUrn, scanLimit, show]);

    useEffect(() => {
        setRuns(null);
        refresh();
        return () => inFlight.current?.abort();
    }, [refresh]);

    // A run this panel follows has ended (or a run already active was found): the list is out of date.
    const onPhaseChange = useCallback(
        (phase: Phase) => {
            if (phase === 'following' || phase === 'succeeded' || phase === 'failed' || phase === 'cancelled') refresh();
        },
        [refresh],
    );

    const columns = useMemo(
        () => [
            { title: 'State', dataIndex: 'state', key: 'state', render: (state: string) => <StateTag state={state} /> },
            { title: 'Started', dataIndex: 'startTimeMs', key: 'started', render: (ms: number | null) => formatTime(ms) },
            { title: 'Requested by', dataIndex: 'requestedBy', key: 'by', render: (urn: string | null) => userName(urn) },
            {
                title: 'Run',
                dataIndex: 'runId',
                key: 'runId',
                render: (id: string) => <Typography.Text type="secondary">{id}</Typography.Text>,
            },
        ],
        [],
    );

    return (
        <div data-testid="lambda-trigger-dataset-panel" style={{ display: 'flex', flexDirection: 'column', gap: 16 }}>
            <div style={{ display: 'flex', alignItems: 'center', justifyContent: 'space-between', gap: 16 }}>
                <div style={{ minWidth: 0 }}>
                    <Typography.Title level={5} style={{ margin: 0 }}>
                        Ingestion runs
                    </Typography.Title>
                    <Typography.Text type="secondary">{datasetNameFromUrn(datasetUrn)}</Typography.Text>
                </div>
                <RunIngestionButton
                    datasetUrn={datasetUrn}
                    resolvePath={props.resolvePath}
                    toast={props.toast}
                    fetchImpl={props.fetchImpl}
                    pollTimeoutMs={props.pollTimeoutMs}
                    onPhaseChange={onPhaseChange}
                    whenHidden={
                        <Typography.Text type="secondary" data-testid="lambda-trigger-no-target">
                            No ingestion job is set up for this dataset, or you may not run it.
                        </Typography.Text>
                    }
                />
            </div>
            {/* An api from before the run list: no history section rather than a notice on every dataset tab. */}
            {error?.kind === 'unsupported' ? null : (
            <div>
                <Typography.Text strong>Last runs</Typography.Text>
                {error ? (
                    <RunsError error={error} />
                ) : (
                    <div data-testid="lambda-trigger-dataset-runs">
                    <Table<RunSummary>
                        size="small"
                        rowKey="runId"
                        loading={runs === null}
                        dataSource={runs ?? []}
                        columns={columns}
                        pagination={false}
                        locale={{ emptyText: 'No runs yet.' }}
                    />
                    </div>
                )}
            </div>
            )}
        </div>
    );
}

function RunsError({ error }: { error: RunsLoadError }) {
    return (
        <div data-testid="lambda-trigger-runs-error" style={{ marginTop: 8 }}>
            <Alert type={error.kind === 'unsupported' ? 'info' : 'warning'} showIcon message={error.text} />
        </div>
    );
}
