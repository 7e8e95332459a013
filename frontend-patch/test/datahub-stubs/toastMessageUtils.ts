// Stand-in for DataHub's `@app/sharedV2/toastMessageUtils`: same names; tests spy on `showToastMessage`.
export enum ToastType {
    INFO = 'info',
    ERROR = 'error',
    SUCCESS = 'success',
    WARNING = 'warning',
    LOADING = 'loading',
}

export const toastCalls: Array<{ type: ToastType; content: unknown; duration: number }> = [];

export const showToastMessage = (type: ToastType, content: unknown, duration: number) => {
    toastCalls.push({ type, content, duration });
};
