import { act, render, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { LastRun, lastRunText, timeAgo } from '../src/LastRun';
import { RunIngestionButton, runsTabPath } from '../src/RunIngestionButton';
import { DATASET_URN, RUN_ID, fakeApi, json } from './helpers/fakeApi';

const NOW = Date.UTC(2026, 10, 29, 12, 0, 0);
const HOUR = 3600_000;

describe('lastRunText', () => {
    it('says what happened, how long ago and who asked', () => {
        expect(
            lastRunText(
                { runId: RUN_ID, state: 'succeeded', startTimeMs: NOW - 3 * HOUR - 60_000, finishedAtMs: NOW - 3 * HOUR, requestedBy: 'urn:li:corpuser:alice' },
                NOW,
            ),
        ).toBe('Last run succeeded 3 h ago by alice');
        expect(lastRunText({ runId: RUN_ID, state: 'failed', finishedAtMs: NOW - 5 * 60_000, requestedBy: null }, NOW)).toBe(
            'Last run failed 5 min ago',
        );
        expect(
            lastRunText({ runId: RUN_ID, state: 'running', startTimeMs: NOW - 10_000, requestedBy: 'urn:li:corpuser:__datahub_system' }, NOW),
        ).toBe('Last run started just now by schedule');
        expect(lastRunText({ runId: RUN_ID, state: 'cancelled', finishedAtMs: NOW - 50 * HOUR }, NOW)).toBe(
            'Last run was cancelled 2 d ago',
        );
    });

    it('never counts into the future', () => {
        expect(timeAgo(NOW, NOW + 5000)).toBe('just now');
    });
});

describe('LastRun', () => {
    it('links to the Runs tab', () => {
        render(<LastRun run={{ runId: RUN_ID, state: 'succeeded', finishedAtMs: NOW - HOUR }} href="/dataset/x/Runs" now={NOW} />);
        expect(screen.getByTestId('run-ingestion-last-run')).toHaveTextContent('Last run succeeded 1 h ago');
        expect(screen.getByTestId('run-ingestion-last-run-link')).toHaveAttribute('href', '/dataset/x/Runs');
    });
});

describe('runsTabPath', () => {
    it("encodes the URN as DataHub's urlEncodeUrn does", () => {
        expect(runsTabPath('urn:li:dataset:(urn:li:dataPlatform:s3,bucket/dir/file%1?#[x],PROD)')).toBe(
            '/dataset/urn:li:dataset:(urn:li:dataPlatform:s3,bucket%2Fdir%2Ffile{{encoded_percent}}1%3F%23%5Bx%5D,PROD)/Runs',
        );
    });
});

describe('RunIngestionButton after a page load', () => {
    beforeEach(() => {
        vi.useFakeTimers();
        vi.setSystemTime(NOW);
    });
    afterEach(() => {
        vi.useRealTimers();
    });

    it('shows the last run from GET /targets, with the Runs tab of the dataset', async () => {
        const api = fakeApi({
            targets: [
                json(200, {
                    datasetUrn: DATASET_URN,
                    available: true,
                    canRun: true,
                    label: 'Orders nightly load',
                    reason: null,
                    activeRun: null,
                    lastRun: { runId: RUN_ID, state: 'succeeded', startTimeMs: NOW - 3 * HOUR - 1000, finishedAtMs: NOW - 3 * HOUR, requestedBy: 'urn:li:corpuser:alice' },
                }),
            ],
        });
        render(<RunIngestionButton datasetUrn={DATASET_URN} fetchImpl={api.fetchImpl} resolvePath={(p) => `/base${p}`} />);
        await act(async () => {
            await vi.advanceTimersByTimeAsync(0);
        });
        const last = screen.getByTestId('run-ingestion-last-run');
        expect(last).toHaveTextContent('Last run succeeded 3 h ago by alice');
        expect(last).toHaveAttribute('data-run-id', RUN_ID);
        expect(screen.getByTestId('run-ingestion-last-run-link')).toHaveAttribute(
            'href',
            `/base/dataset/${DATASET_URN}/Runs`,
        );
    });

    it('shows nothing about a last run when there is none', async () => {
        const api = fakeApi({
            targets: [json(200, { datasetUrn: DATASET_URN, available: true, canRun: true, label: 'x', lastRun: null })],
        });
        render(<RunIngestionButton datasetUrn={DATASET_URN} fetchImpl={api.fetchImpl} />);
        await act(async () => {
            await vi.advanceTimersByTimeAsync(0);
        });
        expect(screen.getByTestId('run-ingestion-button')).toBeInTheDocument();
        expect(screen.queryByTestId('run-ingestion-last-run')).toBeNull();
    });
});
