import '@testing-library/jest-dom/vitest';
import { cleanup } from '@testing-library/react';
import { message } from 'antd';
import { afterEach, beforeEach, vi } from 'vitest';

// antd 4 reads matchMedia (responsive observers); jsdom has none.
const hasWindow = typeof window !== 'undefined';

if (hasWindow && !window.matchMedia) {
    Object.defineProperty(window, 'matchMedia', {
        writable: true,
        value: (query: string) => ({
            matches: false,
            media: query,
            onchange: null,
            addListener: () => {},
            removeListener: () => {},
            addEventListener: () => {},
            removeEventListener: () => {},
            dispatchEvent: () => false,
        }),
    });
}

afterEach(() => {
    if (!hasWindow) return;
    cleanup();
    message.destroy();
});

// jsdom does not implement getComputedStyle for pseudo elements (rc-util measures the scrollbar with one when a
// modal opens); answer for the element itself instead of printing "Not implemented" errors.
if (hasWindow) {
    const realGetComputedStyle = window.getComputedStyle.bind(window);
    window.getComputedStyle = ((element: Element) => realGetComputedStyle(element)) as typeof window.getComputedStyle;
}

// The button logs hidden-target lookups at debug level; keep test output quiet.
beforeEach(() => {
    vi.spyOn(console, 'debug').mockImplementation(() => undefined);
});
