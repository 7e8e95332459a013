import { Typography } from 'antd';

import { LastRunInfo } from './api';
import { describeParameters } from './parameters';

/** "3 h ago" from two epoch-millisecond instants (`now` first). */
export function timeAgo(now: number, then: number): string {
    const seconds = Math.max(0, Math.round((now - then) / 1000));
    if (seconds < 60) return 'just now';
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return `${minutes} min ago`;
    const hours = Math.floor(minutes / 60);
    if (hours < 48) return `${hours} h ago`;
    return `${Math.floor(hours / 24)} d ago`;
}

/** `urn:li:corpuser:alice` -> `alice`; DataHub's scheduler writes as `__datahub_system`. */
function requester(urn: string | null | undefined): string | null {
    if (!urn) return null;
    if (urn === 'urn:li:corpuser:__datahub_system') return 'schedule';
    const match = /^urn:li:corpuser:(.+)$/.exec(urn);
    return match ? match[1] : urn;
}

const VERBS: Record<LastRunInfo['state'], string> = {
    requested: 'was requested',
    running: 'started',
    succeeded: 'succeeded',
    failed: 'failed',
    cancelled: 'was cancelled',
};

const TYPES: Partial<Record<LastRunInfo['state'], 'success' | 'danger' | 'warning' | 'secondary'>> = {
    succeeded: 'success',
    failed: 'danger',
    cancelled: 'warning',
};

/** The sentence for a dataset's last run: "Last run succeeded 3 h ago by alice". */
export function lastRunText(run: LastRunInfo, now: number): string {
    const at = run.finishedAtMs ?? run.startTimeMs;
    const when = typeof at === 'number' ? ` ${timeAgo(now, at)}` : '';
    const who = requester(run.requestedBy);
    return `Last run ${VERBS[run.state] ?? run.state}${when}${who ? ` by ${who}` : ''}`;
}

export interface LastRunProps {
    run: LastRunInfo;
    /** The dataset's Runs tab, where the run's row is (DataHub: `/dataset/<urn>/Runs`). */
    href?: string;
    /** For tests; defaults to the clock. */
    now?: number;
    /** Offered when the run took parameters: opens the dialog filled with them. */
    onRunAgain?: () => void;
}

/**
 * The dataset's last run after a page load (`lastRun` of `GET /api/ingestion/targets`, read from DataHub's own
 * run history), linking to the dataset's Runs tab.
 */
export function LastRun({ run, href, now, onRunAgain }: LastRunProps) {
    const text = lastRunText(run, now ?? Date.now());
    const absolute = run.finishedAtMs ?? run.startTimeMs;
    return (
        <span data-testid="run-ingestion-last-run" data-run-id={run.runId} style={{ whiteSpace: 'nowrap' }} title={absolute ? new Date(absolute).toString() : undefined}>
            <Typography.Text type={TYPES[run.state] ?? 'secondary'}>{text}</Typography.Text>
            {href && (
                <>
                    {' · '}
                    <Typography.Link href={href} data-testid="run-ingestion-last-run-link">
                        View runs
                    </Typography.Link>
                </>
            )}
            {onRunAgain && <RunAgainLink onClick={onRunAgain} parameters={run.parameters} />}
        </span>
    );
}

/** " · Run again with the same parameters", its values in the tooltip. */
export function RunAgainLink({ onClick, parameters }: { onClick: () => void; parameters?: Record<string, unknown> | null }) {
    return (
        <>
            {' · '}
            <Typography.Link
                onClick={onClick}
                data-testid="run-ingestion-run-again"
                title={describeParameters(parameters) ?? undefined}
            >
                Run again with the same parameters
            </Typography.Link>
        </>
    );
}

export default LastRun;
