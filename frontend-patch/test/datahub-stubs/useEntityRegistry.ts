// Stand-in for DataHub's `@app/useEntityRegistry`: only `getDisplayName`.
export const useEntityRegistry = () => ({
    getDisplayName: (_type: unknown, data: { name?: string } | null) => data?.name ?? '',
});
