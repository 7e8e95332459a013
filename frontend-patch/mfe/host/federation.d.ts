// Types of the runtime that @originjs/vite-plugin-federation generates for a host ('virtual:__federation__').
declare module 'virtual:__federation__' {
    export interface RemoteConfig {
        url: string | (() => Promise<string>);
        format: 'esm' | 'systemjs' | 'var';
        from: 'vite' | 'webpack';
    }
    export function __federation_method_setRemote(name: string, config: RemoteConfig): void;
    export function __federation_method_getRemote(name: string, exposedPath: string): Promise<unknown>;
    export function __federation_method_unwrapDefault(module: unknown): Promise<unknown>;
}
