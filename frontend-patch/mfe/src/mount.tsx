/**
 * The micro-frontend entry: `mount(el, ctx)` as DataHub's MFE host calls it.
 *
 * DataHub's host (`datahub-web-react/src/app/mfeframework/MFEConfigurableContainer.tsx`) loads this module with
 * `getRemote('lambdaTriggerMFE', './mount')`, passes it through `unwrapDefault` (which returns `module.default` for
 * an ES module) and then takes the result if it is a function, else its `.mount`, else `.default` / `.default.mount`.
 * So the mount function must be the DEFAULT export: a module with only a named `mount` would unwrap to undefined.
 * The host calls the function it returns when the slot goes away.
 *
 * One module serves both slots: `entity.detail.tab` (context `{entity: {urn, type}}`) draws the dataset's run
 * panel; `nav.page` (or no context, as older hosts call it) draws the "Lambda runs" page.
 */
import { render, unmountComponentAtNode } from 'react-dom';

import { FetchLike, createIngestionApiClient } from '../../src/api';
import { antdToaster } from '../../src/toast';
import { DatasetRunPanel } from './DatasetRunPanel';
import { apiResolver, prefixFromPublicPath } from './paths';
import { RecentRunsPage } from './RecentRunsPage';
import { HostContext, panelFor } from './slotContext';

declare let __webpack_public_path__: string;

function publicPath(): string {
    try {
        return typeof __webpack_public_path__ === 'string' ? __webpack_public_path__ : '';
    } catch {
        return '';
    }
}

export interface MountOptions {
    /** Overrides where the api is (default: derived from where this bundle was loaded from). */
    prefix?: string;
    fetchImpl?: FetchLike;
}

export function mount(el: HTMLElement, ctx?: HostContext | null, options: MountOptions = {}): () => void {
    const prefix = options.prefix ?? prefixFromPublicPath(publicPath());
    const resolvePath = apiResolver(prefix);
    const fetchImpl = options.fetchImpl;
    const client = createIngestionApiClient({ resolvePath, fetchImpl });
    const panel = panelFor(ctx);

    const root = document.createElement('div');
    root.className = 'lambda-trigger-mfe';
    root.setAttribute('data-lambda-trigger-slot', panel.kind === 'dataset' ? 'entity.detail.tab' : 'nav.page');
    el.appendChild(root);

    if (panel.kind === 'dataset' && panel.entityType && panel.entityType.toUpperCase() !== 'DATASET') {
        root.textContent = 'Ingestion runs are available on dataset pages only.';
    } else if (panel.kind === 'dataset') {
        render(
            <DatasetRunPanel
                datasetUrn={panel.datasetUrn ?? ''}
                client={client}
                resolvePath={resolvePath}
                fetchImpl={fetchImpl}
                toast={antdToaster}
            />,
            root,
        );
    } else {
        render(<RecentRunsPage client={client} datahubPrefix={prefix} />, root);
    }

    let mounted = true;
    return () => {
        if (!mounted) return;
        mounted = false;
        // Unmounting runs every effect cleanup: polling timers and pending requests of the button and the lists stop.
        unmountComponentAtNode(root);
        root.remove();
    };
}

export default mount;
