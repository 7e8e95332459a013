import { describe, expect, it } from 'vitest';

import { IngestionApiError, createIngestionApiClient, describeError, isTransientError } from '../src/api';
import {
    DATASET_URN,
    OTHER_RUN_ID,
    RUN_ID,
    alreadyActiveReply,
    apiError,
    cancellingOk,
    fakeApi,
    json,
    runStatus,
    startedOk,
    targetOk,
    targetWithActiveRun,
} from './helpers/fakeApi';

describe('ingestion api client', () => {
    it('asks for the target with the encoded URN, same origin, with the session cookie', async () => {
        const api = fakeApi({ targets: [targetOk] });
        const client = createIngestionApiClient({ fetchImpl: api.fetchImpl });
        const target = await client.getTarget(DATASET_URN);
        expect(target).toMatchObject({ available: true, canRun: true, label: 'Orders nightly load' });
        expect(api.calls[0].url).toBe(`/api/ingestion/targets?datasetUrn=${encodeURIComponent(DATASET_URN)}`);
        expect(api.calls[0].method).toBe('GET');
        expect(api.calls[0].credentials).toBe('include');
        expect(api.calls[0].headers.Accept).toBe('application/json');
    });

    it('resolves every path through the resolver (DataHub base path)', async () => {
        const api = fakeApi({ targets: [targetOk], run: [startedOk], runs: [runStatus('running')] });
        const client = createIngestionApiClient({ fetchImpl: api.fetchImpl, resolvePath: (p) => `/datahub${p}` });
        await client.getTarget(DATASET_URN);
        await client.startRun(DATASET_URN);
        await client.getRun(RUN_ID);
        expect(api.calls.map((c) => c.url.split('?')[0])).toEqual([
            '/datahub/api/ingestion/targets',
            '/datahub/api/ingestion/run',
            `/datahub/api/ingestion/runs/${RUN_ID}`,
        ]);
    });

    it('POSTs {datasetUrn, reason} as JSON', async () => {
        const api = fakeApi({ run: [startedOk] });
        const client = createIngestionApiClient({ fetchImpl: api.fetchImpl });
        const started = await client.startRun(DATASET_URN, '  backfill after outage ');
        expect(started.runId).toBe(RUN_ID);
        const call = api.calls[0];
        expect(call.method).toBe('POST');
        expect(call.credentials).toBe('include');
        expect(call.headers['Content-Type']).toBe('application/json');
        expect(call.body).toEqual({ datasetUrn: DATASET_URN, reason: 'backfill after outage' });
    });

    it('leaves out an empty reason', async () => {
        const api = fakeApi({ run: [startedOk] });
        const client = createIngestionApiClient({ fetchImpl: api.fetchImpl });
        await client.startRun(DATASET_URN, '   ');
        expect(api.calls[0].body).toEqual({ datasetUrn: DATASET_URN });
    });

    it.each([
        [400, 'invalid_request', 'invalid_request'],
        [401, 'unauthenticated', 'unauthenticated'],
        [403, 'forbidden', 'forbidden'],
        [404, 'dataset_not_found', 'not_found'],
        [422, 'no_target', 'no_target'],
        [503, 'datahub_unavailable', 'unavailable'],
        [500, 'internal', 'http'],
    ])('maps HTTP %i (%s) to kind %s with the server message', async (status, code, kind) => {
        const api = fakeApi({ run: [apiError(status, code, `server says ${status}`)] });
        const client = createIngestionApiClient({ fetchImpl: api.fetchImpl });
        const error = await client.startRun(DATASET_URN).catch((e) => e);
        expect(error).toBeInstanceOf(IngestionApiError);
        expect(error).toMatchObject({ kind, status, code, serverMessage: `server says ${status}` });
        expect(error.message).toBe(`server says ${status}`);
    });

    it('copes with an error body that is not JSON', async () => {
        const api = fakeApi({ runs: [{ status: 502, raw: '<html>Bad gateway</html>' }] });
        const client = createIngestionApiClient({ fetchImpl: api.fetchImpl });
        const error = await client.getRun(RUN_ID).catch((e) => e);
        expect(error).toMatchObject({ kind: 'unavailable', status: 502, serverMessage: undefined });
        expect(error.message).toMatch(/^HTTP 502/);
    });

    it('reports a network failure as kind network', async () => {
        const api = fakeApi({ targets: [new TypeError('Failed to fetch')] });
        const client = createIngestionApiClient({ fetchImpl: api.fetchImpl });
        const error = await client.getTarget(DATASET_URN).catch((e) => e);
        expect(error).toMatchObject({ kind: 'network' });
        expect(isTransientError(error)).toBe(true);
    });

    it('rejects a 2xx body without the expected fields', async () => {
        const api = fakeApi({ run: [json(202, { status: 'started' })], targets: [json(200, { hello: 1 })] });
        const client = createIngestionApiClient({ fetchImpl: api.fetchImpl });
        await expect(client.startRun(DATASET_URN)).rejects.toMatchObject({ kind: 'bad_response' });
        await expect(client.getTarget(DATASET_URN)).rejects.toMatchObject({ kind: 'bad_response' });
    });

    it('passes an abort through untouched', async () => {
        const api = fakeApi({ runs: ['hang'] });
        const client = createIngestionApiClient({ fetchImpl: api.fetchImpl });
        const controller = new AbortController();
        const pending = client.getRun(RUN_ID, controller.signal).catch((e) => e);
        controller.abort();
        expect((await pending).name).toBe('AbortError');
    });
});

describe('ingestion api client: run lifecycle', () => {
    it('reads cancellable and duplicateOf from a run, and activeRun from a target', async () => {
        const api = fakeApi({
            runs: [runStatus('cancelled', { cancellable: false, duplicateOf: OTHER_RUN_ID })],
            targets: [targetWithActiveRun('running')],
        });
        const client = createIngestionApiClient({ fetchImpl: api.fetchImpl });
        expect(await client.getRun(RUN_ID)).toMatchObject({ state: 'cancelled', cancellable: false, duplicateOf: OTHER_RUN_ID });
        expect((await client.getTarget(DATASET_URN)).activeRun).toEqual({
            runId: OTHER_RUN_ID,
            state: 'running',
            startTimeMs: 1764100001000,
            requestedBy: 'urn:li:corpuser:jdoe',
        });
    });

    it('takes a 200 alreadyActive answer to a start as the active run', async () => {
        const api = fakeApi({ run: [alreadyActiveReply] });
        const client = createIngestionApiClient({ fetchImpl: api.fetchImpl });
        expect(await client.startRun(DATASET_URN)).toMatchObject({ runId: OTHER_RUN_ID, alreadyActive: true });
    });

    it('POSTs a cancel to /runs/{id}/cancel as JSON, with the session cookie and the base path', async () => {
        const api = fakeApi({ cancel: [cancellingOk] });
        const client = createIngestionApiClient({ fetchImpl: api.fetchImpl, resolvePath: (p) => `/datahub${p}` });
        expect(await client.cancelRun('lt-a/b')).toMatchObject({ runId: RUN_ID, status: 'cancelling' });
        expect(api.calls[0]).toMatchObject({
            url: `/datahub/api/ingestion/runs/${encodeURIComponent('lt-a/b')}/cancel`,
            method: 'POST',
            credentials: 'include',
        });
        expect(api.calls[0].headers['Content-Type']).toBe('application/json');
    });

    it.each([
        ['not_cancellable', 'A synchronous Lambda cannot be stopped.'],
        ['already_finished', 'The run already finished.'],
    ])('maps 409 %s to kind conflict with its code', async (code, text) => {
        const api = fakeApi({ cancel: [apiError(409, code, text)] });
        const client = createIngestionApiClient({ fetchImpl: api.fetchImpl });
        const error = await client.cancelRun(RUN_ID).catch((e) => e);
        expect(error).toMatchObject({ kind: 'conflict', status: 409, code, serverMessage: text });
        expect(isTransientError(error)).toBe(false);
    });

    it('lists recent runs with GET /runs?limit=N', async () => {
        const rows = [
            { runId: 'r2', datasetUrn: DATASET_URN, state: 'running', startTimeMs: 2, requestedBy: 'urn:li:corpuser:a' },
            { runId: 'r1', datasetUrn: DATASET_URN, state: 'succeeded', startTimeMs: 1, requestedBy: null },
        ];
        const api = fakeApi({ list: [json(200, { runs: [...rows, null, { nope: 1 }] })] });
        const client = createIngestionApiClient({ fetchImpl: api.fetchImpl });
        expect(await client.listRuns(25)).toEqual(rows);
        expect(api.calls[0].url).toBe('/api/ingestion/runs?limit=25');
        const bad = fakeApi({ list: [json(200, { items: [] })] });
        await expect(createIngestionApiClient({ fetchImpl: bad.fetchImpl }).listRuns(5)).rejects.toMatchObject({
            kind: 'bad_response',
        });
    });
});

describe('describeError', () => {
    const action = 'Could not start the ingestion run';

    it('asks to sign in again on 401', () => {
        const text = describeError(new IngestionApiError('unauthenticated', 'x', { status: 401 }), action);
        expect(text).toMatch(/sign in again/i);
    });

    it('says not allowed on 403, with the server text', () => {
        const text = describeError(
            new IngestionApiError('forbidden', 'x', { status: 403, serverMessage: 'needs Manage Ingestion' }),
            action,
        );
        expect(text).toBe('You are not allowed to run this ingestion: needs Manage Ingestion');
    });

    it('gives the server message for other errors', () => {
        const text = describeError(
            new IngestionApiError('no_target', 'No target is mapped', { status: 422, serverMessage: 'No target is mapped' }),
            action,
        );
        expect(text).toBe(`${action}: No target is mapped`);
    });

    it('explains a network error', () => {
        expect(describeError(new IngestionApiError('network', 'Failed to fetch'), action)).toMatch(/could not be reached/);
    });

    it('handles foreign errors', () => {
        expect(describeError(new Error('boom'), action)).toBe(`${action}: boom.`);
    });

    it('treats 5xx and network as transient, 4xx not', () => {
        expect(isTransientError(new IngestionApiError('unavailable', 'x', { status: 503 }))).toBe(true);
        expect(isTransientError(new IngestionApiError('http', 'x', { status: 500 }))).toBe(true);
        expect(isTransientError(new IngestionApiError('not_found', 'x', { status: 404 }))).toBe(false);
        expect(isTransientError(new IngestionApiError('unauthenticated', 'x', { status: 401 }))).toBe(false);
        expect(isTransientError(new Error('x'))).toBe(false);
    });
});
