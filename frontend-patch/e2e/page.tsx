// Test page: the Run ingestion button for the dataset named in the query string, in a header-like row.
//   /?datasetUrn=<urn>[&name=<display name>][&pollTimeoutMs=<ms>]
import 'antd/dist/antd.css';

import { render } from 'react-dom';

import { RunIngestionButton, datasetNameFromUrn } from '../src/RunIngestionButton';

const params = new URLSearchParams(window.location.search);
const datasetUrn = params.get('datasetUrn') ?? '';
const datasetName = params.get('name') ?? undefined;
const pollTimeoutMs = params.get('pollTimeoutMs') ? Number(params.get('pollTimeoutMs')) : undefined;

function Page() {
    return (
        <div style={{ fontFamily: 'sans-serif', padding: 24 }}>
            <div
                style={{
                    display: 'flex',
                    justifyContent: 'space-between',
                    alignItems: 'center',
                    padding: 18,
                    border: '1px solid #e8e8e8',
                    borderRadius: 12,
                    minWidth: 720,
                }}
            >
                <div>
                    <div style={{ fontSize: 16, fontWeight: 600 }} data-testid="dataset-name">
                        {datasetName ?? datasetNameFromUrn(datasetUrn)}
                    </div>
                    <div style={{ fontSize: 12, color: '#8c8c8c' }}>{datasetUrn}</div>
                </div>
                <div style={{ display: 'flex', justifyContent: 'flex-end', gap: 8 }}>
                    {datasetUrn ? (
                        <RunIngestionButton
                            datasetUrn={datasetUrn}
                            datasetName={datasetName}
                            pollTimeoutMs={pollTimeoutMs}
                        />
                    ) : (
                        <span data-testid="no-urn">Pass ?datasetUrn=… in the URL</span>
                    )}
                </div>
            </div>
        </div>
    );
}

render(<Page />, document.getElementById('root'));
