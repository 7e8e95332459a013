import { Alert, Button, Table, Typography } from 'antd';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';

import { IngestionApiClient, RunSummary } from '../../src/api';
import { datasetNameFromUrn } from '../../src/RunIngestionButton';
import { datasetLink } from './paths';
import { RunsLoadError, StateTag, formatTime, isActive, loadRuns, userName } from './runsCommon';

export interface RecentRunsPageProps {
    client: IngestionApiClient;
    /** Prefix of DataHub's own URLs (its base path), for the links to each dataset. */
    datahubPrefix: string;
    limit?: number;
    /** Refresh period while a listed run is still active. */
    refreshMs?: number;
}

export const DEFAULT_RUNS_LIMIT = 50;
export const DEFAULT_REFRESH_MS = 10000;

/**
 * The `nav.page` panel, "Lambda runs": the most recent runs across datasets, their state, and a link to each
 * dataset. Refreshes itself while a run in the list is still active; the Refresh button reloads at once.
 */
export function RecentRunsPage(props: RecentRunsPageProps) {
    const { client, datahubPrefix, limit = DEFAULT_RUNS_LIMIT, refreshMs = DEFAULT_REFRESH_MS } = props;
    const [runs, setRuns] = useState<RunSummary[] | null>(null);
    const [error, setError] = useState<RunsLoadError | null>(null);
    const [loading, setLoading] = useState(true);
    const inFlight = useRef<AbortController | null>(null);
    const timer = useRef<ReturnType<typeof setTimeout> | null>(null);

    const load = useCallback(() => {
        if (timer.current !== null) clearTimeout(timer.current);
        timer.current = null;
        inFlight.current?.abort();
        const controller = new AbortController();
        inFlight.current = controller;
        setLoading(true);
        loadRuns(client, limit, controller.signal).then((result) => {
            if (controller.signal.aborted) return;
            inFlight.current = null;
            setLoading(false);
            if (!result.ok) {
                setError(result.error);
                return;
            }
            setError(null);
            setRuns(result.runs);
            if (result.runs.some((run) => isActive(run.state))) {
                timer.current = setTimeout(load, refreshMs);
            }
        });
    }, [client, limit, refreshMs]);

    useEffect(() => {
        load();
        return () => {
            inFlight.current?.abort();
            if (timer.current !== null) clearTimeout(timer.current);
            timer.current = null;
        };
    }, [load]);

    const columns = useMemo(
        () => [
            {
                title: 'Dataset',
                dataIndex: 'datasetUrn',
                key: 'dataset',
                render: (urn: string) => (
                    <a href={datasetLink(datahubPrefix, urn)} title={urn} data-testid="lambda-trigger-dataset-link">
                        {datasetNameFromUrn(urn)}
                    </a>
                ),
            },
            { title: 'State', dataIndex: 'state', key: 'state', render: (state: string) => <StateTag state={state} /> },
            { title: 'Started', dataIndex: 'startTimeMs', key: 'started', render: (ms: number | null) => formatTime(ms) },
            { title: 'Requested by', dataIndex: 'requestedBy', key: 'by', render: (urn: string | null) => userName(urn) },
        ],
        [datahubPrefix],
    );

    return (
        <div data-testid="lambda-trigger-runs-page" style={{ display: 'flex', flexDirection: 'column', gap: 16 }}>
            <div style={{ display: 'flex', alignItems: 'center', justifyContent: 'space-between' }}>
                <div>
                    <Typography.Title level={4} style={{ margin: 0 }}>
                        Lambda runs
                    </Typography.Title>
                    <Typography.Text type="secondary">Recent ingestion runs started from DataHub, newest first.</Typography.Text>
                </div>
                <Button onClick={load} loading={loading} data-testid="lambda-trigger-refresh">
                    Refresh
                </Button>
            </div>
            {error ? (
                <div data-testid="lambda-trigger-runs-error">
                    <Alert type={error.kind === 'unsupported' ? 'info' : 'warning'} showIcon message={error.text} />
                </div>
            ) : (
                <div data-testid="lambda-trigger-runs">
                <Table<RunSummary>
                    size="middle"
                    rowKey="runId"
                    loading={runs === null}
                    dataSource={runs ?? []}
                    columns={columns}
                    pagination={{ pageSize: 20, hideOnSinglePage: true }}
                    locale={{ emptyText: 'No runs yet.' }}
                />
                </div>
            )}
        </div>
    );
}
