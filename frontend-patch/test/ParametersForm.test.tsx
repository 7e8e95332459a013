import { act, fireEvent, render, screen, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { RunIngestionButton } from '../src/RunIngestionButton';
import { ParameterSchema, checkForm, describeParameters, initialValues, parseField } from '../src/parameters';
import { DATASET_URN, fakeApi, json, runStatus, startedOk } from './helpers/fakeApi';

const SCHEMA: ParameterSchema = {
    type: 'object',
    properties: {
        start: { type: 'string', format: 'date', title: 'First day' },
        until: { type: 'string', format: 'date-time' },
        mode: { type: 'string', enum: ['incremental', 'full'], default: 'incremental' },
        partition: { type: 'string', pattern: '^p[0-9]{2}$', maxLength: 3 },
        batch: { type: 'integer', minimum: 1, maximum: 10, default: 5 },
        ratio: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
        dryRun: { type: 'boolean', default: false, description: 'Plan only' },
    },
    required: ['start'],
};

const targetWithParameters = json(200, {
    datasetUrn: DATASET_URN,
    available: true,
    canRun: true,
    label: 'Orders nightly load',
    reason: null,
    parameters: SCHEMA,
});

async function flush(ms = 0) {
    await act(async () => {
        await vi.advanceTimersByTimeAsync(ms);
    });
}

beforeEach(() => {
    vi.useFakeTimers();
});

afterEach(() => {
    vi.useRealTimers();
});

describe('the schema subset in the browser', () => {
    it('starts from the defaults', () => {
        expect(initialValues(SCHEMA)).toEqual({
            start: '',
            until: '',
            mode: 'incremental',
            partition: '',
            batch: '5',
            ratio: '',
            dryRun: false,
        });
        expect(initialValues(SCHEMA, { until: '2026-01-31T10:30:00Z', dryRun: true }).until).toBe('2026-01-31T10:30');
    });

    it.each([
        [SCHEMA.properties.start, '2026-02-30', 'must be a date (YYYY-MM-DD)'],
        [SCHEMA.properties.mode, 'fast', 'must be one of: "incremental", "full"'],
        [SCHEMA.properties.partition, 'q01', 'must match the pattern ^p[0-9]{2}$'],
        [SCHEMA.properties.partition, 'p001', 'must be at most 3 characters'],
        [SCHEMA.properties.batch, '11', 'must be <= 10'],
        [SCHEMA.properties.batch, '0', 'must be >= 1'],
        [SCHEMA.properties.batch, '2.5', 'must be an integer'],
        [SCHEMA.properties.ratio, '0', 'must be > 0'],
        [SCHEMA.properties.until, '2026-13-01T10:00', 'must be a date and time'],
    ])('refuses %j %s: %s', (prop, raw, message) => {
        expect(parseField(prop, raw)).toEqual({ error: message });
    });

    it('types the values it sends, date-times in UTC', () => {
        const { errors, parameters } = checkForm(SCHEMA, {
            ...initialValues(SCHEMA),
            start: '2026-01-31',
            until: '2026-02-01T06:30',
            ratio: '0.5',
            dryRun: true,
        });
        expect(errors).toEqual({});
        expect(parameters).toEqual({
            start: '2026-01-31',
            until: '2026-02-01T06:30:00Z',
            mode: 'incremental',
            batch: 5,
            ratio: 0.5,
            dryRun: true,
        });
        expect(checkForm(SCHEMA, initialValues(SCHEMA)).errors).toEqual({ start: 'is required' });
        expect(describeParameters({ start: '2026-01-31', dryRun: true })).toBe('start=2026-01-31, dryRun=true');
    });
});

describe('the form in the dialog', () => {
    async function openDialog(api: ReturnType<typeof fakeApi>) {
        render(<RunIngestionButton datasetUrn={DATASET_URN} fetchImpl={api.fetchImpl} toast={vi.fn()} />);
        await flush();
        fireEvent.click(screen.getByTestId('run-ingestion-button'));
        await flush();
        return screen.getByRole('dialog', { name: 'Run ingestion' });
    }

    it('renders one control per parameter with its default', async () => {
        const api = fakeApi({ targets: [targetWithParameters] });
        const dialog = await openDialog(api);
        const d = within(dialog);
        expect(d.getByLabelText('First day')).toHaveAttribute('type', 'date');
        expect(d.getByLabelText('until (optional) (UTC)')).toHaveAttribute('type', 'datetime-local');
        expect(d.getByLabelText('mode (optional)').tagName).toBe('SELECT');
        expect(d.getByLabelText('mode (optional)')).toHaveValue('incremental');
        expect(d.getByLabelText('batch (optional)')).toHaveAttribute('type', 'number');
        expect(d.getByLabelText('batch (optional)')).toHaveValue(5);
        expect(d.getByRole('switch')).toHaveAttribute('aria-checked', 'false');
        expect(d.getByText('Plan only')).toBeInTheDocument();
        expect(d.getByLabelText('partition (optional)')).toHaveAttribute('type', 'text');
    });

    it('shows problems inline and sends nothing until they are fixed', async () => {
        const api = fakeApi({ targets: [targetWithParameters], run: [startedOk], runs: [json(200, { runId: 'x', state: 'running' })] });
        const dialog = await openDialog(api);
        const d = within(dialog);
        fireEvent.change(d.getByLabelText('batch (optional)'), { target: { value: '42' } });
        expect(d.getByRole('alert')).toHaveTextContent('batch must be <= 10');
        expect(d.getByLabelText('batch (optional)')).toHaveAttribute('aria-invalid', 'true');
        fireEvent.click(d.getByRole('button', { name: 'Run' }));
        await flush();
        expect(api.callsTo('run')).toHaveLength(0);
        expect(d.getByText('First day is required')).toBeInTheDocument();
    });

    it('sends the typed values with the run', async () => {
        const api = fakeApi({ targets: [targetWithParameters], run: [startedOk], runs: [json(200, { runId: 'x', state: 'running' })] });
        const dialog = await openDialog(api);
        const d = within(dialog);
        fireEvent.change(d.getByLabelText('First day'), { target: { value: '2026-01-31' } });
        fireEvent.change(d.getByLabelText('mode (optional)'), { target: { value: 'full' } });
        fireEvent.change(d.getByLabelText('batch (optional)'), { target: { value: '7' } });
        fireEvent.click(d.getByRole('switch'));
        fireEvent.click(d.getByRole('button', { name: 'Run' }));
        await flush();
        expect(api.callsTo('run')).toHaveLength(1);
        expect(api.callsTo('run')[0].body).toEqual({
            datasetUrn: DATASET_URN,
            parameters: { start: '2026-01-31', mode: 'full', batch: 7, dryRun: true },
        });
    });

    it('draws no form for a target without parameters and sends none', async () => {
        const api = fakeApi({
            targets: [json(200, { datasetUrn: DATASET_URN, available: true, canRun: true, label: 'L', parameters: null })],
            run: [startedOk],
            runs: [json(200, { runId: 'x', state: 'running' })],
        });
        const dialog = await openDialog(api);
        expect(within(dialog).queryByTestId('run-parameters')).toBeNull();
        fireEvent.click(within(dialog).getByRole('button', { name: 'Run' }));
        await flush();
        expect(api.callsTo('run')[0].body).toEqual({ datasetUrn: DATASET_URN });
    });
});

describe('run again with the same parameters', () => {
    it('offers the last run\'s values after a page load and opens the dialog with them', async () => {
        const lastRun = {
            runId: 'lt-20261125T205743123Z-k3f9a1c2b7',
            state: 'succeeded',
            startTimeMs: Date.now() - 60_000,
            finishedAtMs: Date.now() - 30_000,
            requestedBy: 'urn:li:corpuser:alice',
            parameters: { start: '2026-01-15', mode: 'full', batch: 9, dryRun: true },
        };
        const api = fakeApi({
            targets: [json(200, { datasetUrn: DATASET_URN, available: true, canRun: true, label: 'L', parameters: SCHEMA, lastRun })],
            run: [startedOk],
            runs: [runStatus('running')],
        });
        render(<RunIngestionButton datasetUrn={DATASET_URN} fetchImpl={api.fetchImpl} toast={vi.fn()} />);
        await flush();
        const again = screen.getByTestId('run-ingestion-run-again');
        expect(again).toHaveTextContent('Run again with the same parameters');
        expect(again).toHaveAttribute('title', 'start=2026-01-15, mode=full, batch=9, dryRun=true');
        fireEvent.click(again);
        await flush();
        const d = within(screen.getByRole('dialog', { name: 'Run ingestion' }));
        expect(d.getByLabelText('First day')).toHaveValue('2026-01-15');
        expect(d.getByLabelText('mode (optional)')).toHaveValue('full');
        fireEvent.click(d.getByRole('button', { name: 'Run' }));
        await flush();
        expect(api.callsTo('run')[0].body).toEqual({ datasetUrn: DATASET_URN, parameters: lastRun.parameters });
    });

    it('offers the values this page sent once its run has ended', async () => {
        const api = fakeApi({ targets: [targetWithParameters], run: [startedOk], runs: [runStatus('succeeded', { durationMs: 1000 })] });
        render(<RunIngestionButton datasetUrn={DATASET_URN} fetchImpl={api.fetchImpl} toast={vi.fn()} pollInitialDelayMs={10} />);
        await flush();
        expect(screen.queryByTestId('run-ingestion-run-again')).toBeNull();
        fireEvent.click(screen.getByTestId('run-ingestion-button'));
        await flush();
        const d = within(screen.getByRole('dialog', { name: 'Run ingestion' }));
        fireEvent.change(d.getByLabelText('First day'), { target: { value: '2026-03-01' } });
        fireEvent.click(d.getByRole('button', { name: 'Run' }));
        await flush(2000);
        expect(screen.getByTestId('run-ingestion')).toHaveAttribute('data-phase', 'succeeded');
        fireEvent.click(screen.getByTestId('run-ingestion-run-again'));
        await flush();
        const again = within(screen.getByRole('dialog', { name: 'Run ingestion' }));
        expect(again.getByLabelText('First day')).toHaveValue('2026-03-01');
        expect(again.getByLabelText('batch (optional)')).toHaveValue(5);
    });
});
