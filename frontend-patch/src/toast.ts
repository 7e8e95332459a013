import { message } from 'antd';

/**
 * Toasts in DataHub's style: DataHub's `src/app/sharedV2/toastMessageUtils.ts` opens an antd `message` with a
 * type, a content and a duration in seconds. This is the same call, so the component looks right on its own;
 * inside DataHub the adapter passes DataHub's own `showToastMessage` instead.
 */
export type ToastKind = 'success' | 'error' | 'warning' | 'info';

export type Toaster = (kind: ToastKind, content: string, durationSeconds: number) => void;

export const antdToaster: Toaster = (kind, content, durationSeconds) => {
    message.open({ type: kind, content, duration: durationSeconds });
};

export const TOAST_SECONDS = {
    success: 3,
    info: 3,
    warning: 5,
    error: 5,
} as const;
