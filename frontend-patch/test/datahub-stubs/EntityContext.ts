// Stand-in for DataHub's `@app/entity/shared/EntityContext`: a context holding what the adapter reads.
import React, { useContext } from 'react';

import { EntityType } from '@types';

export interface StubEntityContextValue {
    urn: string;
    entityType: EntityType;
    entityData: { name?: string; siblings?: { isPrimary?: boolean; siblings?: Array<{ urn: string }> } } | null;
    loading: boolean;
    /** What `useMutationUrn` returns; DataHub derives it from the siblings. */
    mutationUrn?: string;
}

export const StubEntityContext = React.createContext<StubEntityContextValue>({
    urn: '',
    entityType: EntityType.Dataset,
    entityData: null,
    loading: true,
});

export const useEntityData = () => {
    const { urn, entityType, entityData, loading } = useContext(StubEntityContext);
    return { urn, entityType, entityData, loading };
};

export const useMutationUrn = () => {
    const { urn, mutationUrn } = useContext(StubEntityContext);
    return mutationUrn ?? urn;
};
