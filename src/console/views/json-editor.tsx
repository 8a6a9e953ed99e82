import { json } from '@codemirror/lang-json';
import { type Diagnostic, lintGutter, setDiagnostics } from '@codemirror/lint';
import { basicSetup, EditorView } from 'codemirror';
import type { RefObject } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

/** What a JsonEditor's owner can do to it. */
export interface EditorHandle {
  /** Replaces the whole text. */
  setText(text: string): void;
  /** Shows these problems in the text (underlined, in the gutter), replacing those shown. */
  showDiagnostics(diagnostics: readonly Diagnostic[]): void;
  focus(): void;
}

/** Props of JsonEditor. */
export interface JsonEditorProps {
  /** The text it starts with; later texts come through the handle. */
  readonly initial: string;
  /** Called with the whole text after every change. */
  readonly onChange: (text: string) => void;
  readonly handle: RefObject<EditorHandle | undefined>;
}

const theme = EditorView.theme({
  '&': { border: '1px solid var(--border)', borderRadius: '4px', background: 'var(--bg)' },
  '&.cm-focused': { outline: '3px solid var(--focus)', outlineOffset: '1px' },
  '.cm-scroller': { fontFamily: 'var(--mono)', maxHeight: '60vh', minHeight: '12rem', overflow: 'auto' },
});

/**
 * A CodeMirror 6 JSON editor. Its content element is labelled "Values editor"; Tab is not
 * captured, so the keyboard moves on past it.
 */
export function JsonEditor({ initial, onChange, handle }: JsonEditorProps) {
  const parent = useRef<HTMLDivElement>(null);
  const changed = useRef(onChange);
  changed.current = onChange;

  useEffect(() => {
    if (parent.current === null) return undefined;
    const view = new EditorView({
      doc: initial,
      parent: parent.current,
      extensions: [
        basicSetup,
        json(),
        lintGutter(),
        theme,
        EditorView.contentAttributes.of({ 'aria-label': 'Values editor' }),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) changed.current(update.state.doc.toString());
        }),
      ],
    });
    handle.current = {
      setText(text) {
        if (view.state.doc.toString() === text) return;
        view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
      },
      showDiagnostics(diagnostics) {
        view.dispatch(setDiagnostics(view.state, diagnostics));
      },
      focus() {
        view.focus();
      },
    };
    return () => {
      handle.current = undefined;
      view.destroy();
    };
    // The view is made once; its text changes through the handle.
  }, []);

  return <div ref={parent} class="editor" />;
}
