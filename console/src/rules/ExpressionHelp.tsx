// Help for the function library beside the editor: each function's signature, what it does and
// an example with its result, generated from the rules engine (plugins/rules/schema/functions.json,
// kept current and its examples checked by the engine's tests).
import { useState } from 'preact/hooks';
import functions from '../../../plugins/rules/schema/functions.json';

interface FunctionHelp {
  name: string;
  signature: string;
  summary: string;
  example: string;
  result: string | null;
}

const HELP = functions as FunctionHelp[];

export function ExpressionHelp() {
  const [filter, setFilter] = useState('');
  const needle = filter.trim().toLowerCase();
  const shown = HELP.filter((f) => !needle || f.name.toLowerCase().includes(needle) || f.summary.toLowerCase().includes(needle));
  return (
    <aside class="card help" data-testid="expression-help" aria-label="expression help">
      <h3>Functions</h3>
      <p class="muted">
        Conditions and expressions are CEL: <code>&&</code> <code>||</code> <code>!</code>, <code>==</code>,{' '}
        <code>in [..]</code>, <code>has(person.custom.x)</code>, <code>a ? b : c</code>. Templates are text with{' '}
        <code>{'${expression}'}</code> parts. A person's fields: <code>person.department</code>, <code>person.custom.level</code>.
      </p>
      <input aria-label="search the functions" placeholder="Search functions" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
      <dl>
        {shown.map((f) => (
          <div key={f.name}>
            <dt><code>{f.signature}</code></dt>
            <dd>
              {f.summary}
              <br />
              <code>{f.example}</code>
              {f.result !== null && <> → <code>{f.result}</code></>}
            </dd>
          </div>
        ))}
      </dl>
    </aside>
  );
}
