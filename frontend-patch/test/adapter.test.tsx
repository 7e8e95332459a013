// The DataHub-side adapter (datahub/RunIngestionHeaderButton.tsx), run against small stand-ins for the DataHub
// modules it imports (see test/datahub-stubs/README.md and the aliases in vitest.config.ts).
import { act, render, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { StubEntityContext, StubEntityContextValue } from '@app/entity/shared/EntityContext';
import { toastCalls } from '@app/sharedV2/toastMessageUtils';
import { setStubBasePath } from '@utils/runtimeBasePath';

import { EntityType } from '@types';

import RunIngestionHeaderButton from '../datahub/RunIngestionHeaderButton';
import { DATASET_URN, apiError, fakeApi, runStatus, startedOk, targetOk } from './helpers/fakeApi';

const SIBLING_URN = 'urn:li:dataset:(urn:li:dataPlatform:dbt,analytics.orders,PROD)';

async function flush(ms = 0) {
    await act(async () => {
        await vi.advanceTimersByTimeAsync(ms);
    });
}

function renderWith(value: Partial<StubEntityContextValue>) {
    const context: StubEntityContextValue = {
        urn: DATASET_URN,
        entityType: EntityType.Dataset,
        entityData: { name: 'orders' },
        loading: false,
        ...value,
    };
    return render(
        <StubEntityContext.Provider value={context}>
            <RunIngestionHeaderButton />
        </StubEntityContext.Provider>,
    );
}

let api: ReturnType<typeof fakeApi>;

beforeEach(() => {
    vi.useFakeTimers();
    toastCalls.length = 0;
    setStubBasePath('');
    api = fakeApi({ targets: [targetOk], run: [apiError(403, 'forbidden', 'nope')] });
    vi.stubGlobal('fetch', api.fetchImpl);
});

afterEach(() => {
    vi.unstubAllGlobals();
    vi.useRealTimers();
});

describe('RunIngestionHeaderButton (DataHub adapter)', () => {
    it.each([EntityType.Dashboard, EntityType.DataJob])('renders nothing and calls nothing for %s', async (type) => {
        const { container } = renderWith({ entityType: type });
        await flush();
        expect(container).toBeEmptyDOMElement();
        expect(api.calls).toHaveLength(0);
    });

    it('waits for the entity data', async () => {
        const { container } = renderWith({ entityData: null, loading: true });
        await flush();
        expect(container).toBeEmptyDOMElement();
        expect(api.calls).toHaveLength(0);
    });

    it('mounts the button for a dataset with the sibling-aware URN, through the runtime base path', async () => {
        setStubBasePath('/datahub/');
        renderWith({ mutationUrn: SIBLING_URN });
        await flush();
        expect(screen.getByRole('button', { name: 'Run ingestion' })).toBeInTheDocument();
        expect(api.calls[0].url).toBe(`/datahub/api/ingestion/targets?datasetUrn=${encodeURIComponent(SIBLING_URN)}`);
    });

    it('names the dataset with the entity registry and toasts through showToastMessage', async () => {
        renderWith({});
        await flush();
        act(() => {
            screen.getByRole('button', { name: 'Run ingestion' }).click();
        });
        await flush();
        expect(screen.getByRole('dialog', { name: 'Run ingestion' })).toHaveTextContent('orders');
        act(() => {
            screen.getByRole('button', { name: 'Run' }).click();
        });
        await flush();
        expect(toastCalls).toEqual([
            { type: 'error', content: 'You are not allowed to run this ingestion: nope', duration: 5 },
        ]);
    });

    it('maps info and success toasts to DataHub toast types for a run that succeeds', async () => {
        api = fakeApi({ targets: [targetOk], run: [startedOk], runs: [runStatus('succeeded')] });
        vi.stubGlobal('fetch', api.fetchImpl);
        renderWith({});
        await flush();
        act(() => {
            screen.getByRole('button', { name: 'Run ingestion' }).click();
        });
        await flush();
        act(() => {
            screen.getByRole('button', { name: 'Run' }).click();
        });
        await flush(1000);
        expect(toastCalls.map((c) => [c.type, c.duration])).toEqual([
            ['info', 3],
            ['success', 3],
        ]);
    });
});
