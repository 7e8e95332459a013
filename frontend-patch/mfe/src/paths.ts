/**
 * Where the api is, seen from the browser.
 *
 * The remote is served by the api itself at `<prefix>/api/ingestion/mfe/remoteEntry.js`, and webpack's
 * `publicPath: 'auto'` learns that URL from the `<script>` tag the host added for it. The api is then at
 * `<prefix>/api/ingestion/...`, and DataHub at `<prefix>/...`: the same reverse proxy serves both (see
 * frontend-patch/README.md, "Why a reverse proxy must route /api/ingestion/ first"), so a DataHub served under a
 * base path works without configuration.
 */
const MFE_SUFFIX = /\/api\/ingestion\/mfe\/?$/;

/** `<prefix>` from the public path of this bundle; '' when the bundle is not served from the api. */
export function prefixFromPublicPath(publicPath: string | undefined | null): string {
    if (!publicPath || !MFE_SUFFIX.test(publicPath)) return '';
    return publicPath.replace(MFE_SUFFIX, '');
}

/** Maps "/api/ingestion/..." (the component's paths) to the URL to call. */
export function apiResolver(prefix: string): (path: string) => string {
    return (path) => `${prefix}${path}`;
}

/**
 * DataHub's own URL encoding of an URN in a path segment (`urlEncodeUrn` in
 * datahub-web-react/src/app/entity/shared/utils.ts): only the characters that break a path are escaped, and `%`
 * becomes `{{encoded_percent}}` (React Router v5 would decode a pre-encoded `%25`), so the link is the one DataHub
 * itself draws and its router reads back (`decodeUrn`).
 */
export function urlEncodeUrn(urn: string): string {
    return urn
        .replace(/%/g, '{{encoded_percent}}')
        .replace(/\//g, '%2F')
        .replace(/\?/g, '%3F')
        .replace(/#/g, '%23')
        .replace(/\[/g, '%5B')
        .replace(/\]/g, '%5D');
}

/** The dataset's page in DataHub. */
export function datasetLink(prefix: string, urn: string): string {
    return `${prefix}/dataset/${urlEncodeUrn(urn)}`;
}
