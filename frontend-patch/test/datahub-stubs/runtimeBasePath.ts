// Stand-in for DataHub's `@utils/runtimeBasePath`: tests set the base path the resolver prepends.
let basePath = '';

export function setStubBasePath(path: string) {
    basePath = path.replace(/\/$/, '');
}

export function resolveRuntimePath(path: string): string {
    return basePath ? `${basePath}/${path.replace(/^\//, '')}` : path;
}
