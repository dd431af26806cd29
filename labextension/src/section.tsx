// A titled block of the sidebar, with optional header actions.
import * as React from 'react';

export function Section(props: { title: string; children: React.ReactNode; extra?: React.ReactNode }) {
  return (
    <section className="same-nb-section">
      <header>
        <h3>{props.title}</h3>
        {props.extra}
      </header>
      {props.children}
    </section>
  );
}
