/**
 * What "Run with upstream" shows: the plan in the Run ingestion dialog (waves, dataset names, what is skipped and
 * why, how many runs), and a parent run's progress (each child's status, by wave). antd 4 only, like the dialog.
 */
import { Tag, Typography } from 'antd';

import {
    ChildRun,
    UpstreamPlan,
    childStatusLabel,
    childrenByWave,
    describeSkipReason,
    planNames,
    planRunCount,
} from './upstream';

const listStyle = { margin: '4px 0 8px', paddingLeft: 20 } as const;
// Waves are an ordered list for screen readers; the visible "Wave n" already numbers them.
const waveListStyle = { margin: '4px 0 8px', paddingLeft: 0, listStyle: 'none' } as const;

/** `urn:li:dataset:(urn:li:dataPlatform:hive,db.table,PROD)` -> `db.table` (a copy: RunIngestionButton imports
 *  this file, so importing it back would make a cycle). */
function nameFromUrn(urn: string): string {
    const match = /^urn:li:dataset:\(urn:li:dataPlatform:[^,]+,(.+),[^,()]+\)$/.exec(urn);
    return match ? match[1] : urn;
}

export function UpstreamPlanView({ plan, headingId }: { plan: UpstreamPlan; headingId: string }) {
    const runs = planRunCount(plan);
    const waves = plan.waves.filter((wave) => wave.length > 0);
    const skipped = plan.skipped ?? [];
    const depth = typeof plan.maxDepth === 'number' ? plan.maxDepth : null;
    return (
        <section aria-labelledby={headingId} data-testid="upstream-plan" style={{ marginBottom: 12 }}>
            <Typography.Text strong id={headingId} data-testid="upstream-plan-summary">
                {runs} run{runs === 1 ? '' : 's'} in {waves.length} wave{waves.length === 1 ? '' : 's'}
                {depth !== null ? ` (up to ${depth} level${depth === 1 ? '' : 's'} upstream)` : ''}
            </Typography.Text>
            <Typography.Paragraph type="secondary" style={{ marginBottom: 4, fontSize: 12 }}>
                One wave after another; the datasets of one wave run at the same time.
            </Typography.Paragraph>
            <ol style={waveListStyle} data-testid="upstream-plan-waves">
                {waves.map((wave, index) => (
                    // The wave's position is its identity: the plan is drawn whole, never reordered.
                    // eslint-disable-next-line react/no-array-index-key
                    <li key={index} data-testid="upstream-plan-wave">
                        <Typography.Text>
                            Wave {index + 1}
                            {index === waves.length - 1 ? ' (this dataset)' : ''}:{' '}
                        </Typography.Text>
                        {wave.map((row, i) => (
                            <span key={row.datasetUrn} title={row.datasetUrn}>
                                {i > 0 ? ', ' : ''}
                                <Typography.Text strong>{row.name || nameFromUrn(row.datasetUrn)}</Typography.Text>
                            </span>
                        ))}
                    </li>
                ))}
            </ol>
            {skipped.length > 0 && (
                <>
                    <Typography.Text type="secondary">Not run ({skipped.length}):</Typography.Text>
                    <ul style={listStyle} data-testid="upstream-plan-skipped">
                        {skipped.map((row) => (
                            <li key={`${row.datasetUrn}-${row.reason}`} title={row.datasetUrn}>
                                <Typography.Text>{row.name || nameFromUrn(row.datasetUrn)}</Typography.Text>
                                <Typography.Text type="secondary">: {describeSkipReason(row.reason)}</Typography.Text>
                            </li>
                        ))}
                    </ul>
                </>
            )}
        </section>
    );
}

/** A parent run's children by wave, each with its status. Names come from the plan when this page has it. */
export function UpstreamProgress({ runs, plan }: { runs: ChildRun[]; plan?: UpstreamPlan | null }) {
    const names = planNames(plan);
    const waves = childrenByWave(runs);
    return (
        <ol style={waveListStyle} data-testid="upstream-progress">
            {waves.map((wave) => (
                <li key={wave.number} data-testid="upstream-progress-wave">
                    <Typography.Text strong>Wave {wave.number}</Typography.Text>
                    <ul style={{ ...waveListStyle, paddingLeft: 12 }}>
                        {wave.children.map((child) => {
                            const label = childStatusLabel(child.status);
                            const name = names.get(child.datasetUrn) || nameFromUrn(child.datasetUrn);
                            return (
                                <li
                                    key={child.runId || child.datasetUrn}
                                    data-testid="upstream-child"
                                    data-status={child.status}
                                    data-state={label.state}
                                    title={child.datasetUrn}
                                    style={{ display: 'flex', justifyContent: 'space-between', gap: 8, padding: '2px 0' }}
                                >
                                    <Typography.Text>{name}</Typography.Text>
                                    <Tag color={label.color} style={{ marginRight: 0 }}>
                                        {label.text}
                                    </Tag>
                                </li>
                            );
                        })}
                    </ul>
                </li>
            ))}
        </ol>
    );
}
