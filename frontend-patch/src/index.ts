export { RunIngestionButton, datasetNameFromUrn } from './RunIngestionButton';
export type { RunIngestionButtonProps } from './RunIngestionButton';
export { createIngestionApiClient, describeError, IngestionApiError, isTransientError } from './api';
export type { IngestionApiClient, IngestionTarget, RunStarted, RunState, RunStatus, PathResolver, FetchLike } from './api';
export { runIngestionReducer, initialRunIngestionState, backoffDelay, isBusy, isVisible } from './runIngestionReducer';
export type { Phase, RunIngestionAction, RunIngestionState } from './runIngestionReducer';
export { useRunIngestion } from './useRunIngestion';
export { antdToaster } from './toast';
export type { Toaster, ToastKind } from './toast';
