import { useEntityData, useMutationUrn } from '@app/entity/shared/EntityContext';
import { RunIngestionButton } from '@app/entityV2/shared/containers/profile/header/RunIngestionButton/RunIngestionButton';
import { ToastKind } from '@app/entityV2/shared/containers/profile/header/RunIngestionButton/toast';
import { ToastType, showToastMessage } from '@app/sharedV2/toastMessageUtils';
import { useEntityRegistry } from '@app/useEntityRegistry';
import { resolveRuntimePath } from '@utils/runtimeBasePath';

import { EntityType } from '@types';

const TOAST_TYPES: Record<ToastKind, ToastType> = {
    success: ToastType.SUCCESS,
    error: ToastType.ERROR,
    warning: ToastType.WARNING,
    info: ToastType.INFO,
};

const showToast = (kind: ToastKind, content: string, durationSeconds: number) =>
    showToastMessage(TOAST_TYPES[kind], content, durationSeconds);

/**
 * datahub-lambda-trigger: the "Run ingestion" button in a dataset page header.
 *
 * Datasets only. Uses the sibling-aware URN DataHub uses for actions (`useMutationUrn`), resolves the api path
 * against DataHub's runtime base path, and toasts through DataHub's `showToastMessage`. The button itself asks
 * `/api/ingestion/targets` whether to show anything, so it stays hidden for datasets without a target and for users
 * who may not run it.
 */
export default function RunIngestionHeaderButton() {
    const { entityType, entityData } = useEntityData();
    const mutationUrn = useMutationUrn();
    const entityRegistry = useEntityRegistry();

    // Wait for the entity (siblings decide the URN); stay mounted across refetches so a followed run is not lost.
    if (entityType !== EntityType.Dataset || !entityData || !mutationUrn) return null;

    const datasetName = entityRegistry.getDisplayName(EntityType.Dataset, entityData) || undefined;
    return (
        <RunIngestionButton
            datasetUrn={mutationUrn}
            datasetName={datasetName}
            resolvePath={resolveRuntimePath}
            toast={showToast}
        />
    );
}
