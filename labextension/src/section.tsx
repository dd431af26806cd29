// A titled, collapsible block of the sidebar, with optional header actions. Whether a section is
// open is remembered (per section name) while JupyterLab runs.
import * as React from 'react';

const open = new Map<string, boolean>();

export function Section(props: {
  title: string;
  children: React.ReactNode;
  extra?: React.ReactNode;
  /** Remembers the open/closed state under this name (default: the title without counts). */
  name?: string;
  /** Open the first time it is shown (default true). */
  initiallyOpen?: boolean;
  className?: string;
}) {
  const key = props.name ?? props.title.replace(/\s*\(.*\)\s*$/, '').replace(/#\d+/, '#');
  const [isOpen, setOpen] = React.useState<boolean>(open.get(key) ?? props.initiallyOpen ?? true);
  const toggle = () => {
    open.set(key, !isOpen);
    setOpen(!isOpen);
  };
  return (
    <section
      className={`same-nb-section ${isOpen ? '' : 'same-nb-collapsed'} ${props.className ?? ''}`}
      data-section={key}
    >
      <header>
        <h3
          className="same-nb-section-toggle"
          role="button"
          tabIndex={0}
          aria-expanded={isOpen}
          title={isOpen ? 'Collapse' : 'Expand'}
          onClick={toggle}
          onKeyDown={e => {
            if (e.key === 'Enter' || e.key === ' ') {
              e.preventDefault();
              toggle();
            }
          }}
        >
          <span className="same-nb-caret">{isOpen ? '▾' : '▸'}</span>
          {props.title}
        </h3>
        {props.extra}
      </header>
      {isOpen ? props.children : null}
    </section>
  );
}
