import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

/** Props of PageHeading. */
export interface PageHeadingProps {
  /** The page's title: the h1's text and the document's title. */
  readonly title: string;
  readonly children?: ComponentChildren;
}

/**
 * A page's h1. When a page opens it takes the focus (screen readers announce the new page, and
 * Tab continues from the top of it) unless something in the page has it already.
 */
export function PageHeading({ title, children }: PageHeadingProps) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · cfgd`;
    const active = document.activeElement;
    if (active === null || active === document.body || !active.closest('main')) ref.current?.focus();
  }, [title]);
  return (
    <h1 ref={ref} tabIndex={-1}>
      {children ?? title}
    </h1>
  );
}
