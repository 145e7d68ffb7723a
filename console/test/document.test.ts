// The two editors share one document: every rule set in the repository, edited through the
// visual editor's writes, keeps every comment and every value it did not change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { append, fieldPath, moveAt, parse, renameKey, setAt } from '../src/rules/document';

// npm runs the tests in console/.
const root = join(process.cwd(), '..');
const documents = readdirSync(join(root, 'examples'))
  .flatMap((dir) => readdirSync(join(root, 'examples', dir)).filter((f) => /\.ya?ml$/.test(f)).map((f) => join(root, 'examples', dir, f)))
  .map((path) => ({ path, text: readFileSync(path, 'utf8') }))
  .filter((d) => parse(d.text).value?.destinations);

const comments = (text: string) => text.split('\n').map((l) => l.match(/\s#\s.*$|^\s*#.*$/)?.[0]?.trim()).filter(Boolean);
const js = (text: string) => parseDocument(text).toJS();

test('the repository has rule sets to try', () => assert.ok(documents.length > 0));

test('a visual edit changes that value and keeps every comment and every other value', () => {
  for (const { path, text } of documents) {
    const before = js(text);
    const [dest] = Object.keys(before.destinations);
    const edited = setAt(text, ['destinations', dest, 'defaults', 'groups'], ['Edited-Group', 'Another']);
    const after = js(edited);
    assert.deepEqual(after.destinations[dest].defaults.groups, ['Edited-Group', 'Another'], path);
    after.destinations[dest].defaults.groups = before.destinations[dest].defaults?.groups;
    if (after.destinations[dest].defaults.groups === undefined) delete after.destinations[dest].defaults.groups;
    if (before.destinations[dest].defaults === undefined && Object.keys(after.destinations[dest].defaults).length === 0) {
      delete after.destinations[dest].defaults;
    }
    assert.deepEqual(after, before, path);
    assert.deepEqual(comments(edited), comments(text), `${path}: comments`);
    // Setting it back gives the same document again.
    const back = setAt(edited, ['destinations', dest, 'defaults', 'groups'], before.destinations[dest].defaults?.groups);
    assert.deepEqual(js(back), before, path);
  }
});

test('rules move, are added and are renamed in place', () => {
  const text = 'destinations:\n  ad:\n    # who\n    rules:\n      - name: a\n        when: "true"\n      - name: b # second\n        when: "false"\n';
  const moved = moveAt(text, ['destinations', 'ad', 'rules', 1], -1);
  assert.deepEqual(js(moved).destinations.ad.rules.map((r: { name: string }) => r.name), ['b', 'a']);
  assert.match(moved, /# who/);
  assert.match(moved, /# second/);
  assert.equal(moveAt(text, ['destinations', 'ad', 'rules', 0], -1), text);
  const added = append(text, ['destinations', 'ad', 'rules'], { name: 'c', when: 'true' });
  assert.equal(js(added).destinations.ad.rules[2].name, 'c');
  const renamed = renameKey('destinations:\n  ad:\n    attributes:\n      sn: { from: family_name } # kept\n', ['destinations', 'ad', 'attributes', 'sn'], 'surname');
  assert.deepEqual(js(renamed).destinations.ad.attributes, { surname: { from: 'family_name' } });
  assert.match(renamed, /# kept/);
});

test('the plugin\'s field names are found from a path', () => {
  const doc = js('destinations:\n  ad:\n    rules:\n      - name: eng\n        when: "true"\n');
  assert.equal(fieldPath(['destinations', 'ad', 'rules', 0, 'when'], doc), 'destinations.ad.rules[eng].when');
  assert.equal(fieldPath(['destinations', 'ad', 'unique', 'sam', 'candidates', 1], doc), 'destinations.ad.unique.sam.candidates[1]');
});

test('a syntax error is named with its line and column', () => {
  const p = parse('destinations:\n  ad: [unclosed\n');
  assert.equal(p.value, null);
  assert.match(p.error ?? '', /line \d+, column \d+/);
});

test('an edit changes only the lines it must; the rest stays as the author wrote it', () => {
  for (const { path, text } of documents) {
    const [dest] = Object.keys(js(text).destinations);
    const edited = setAt(text, ['destinations', dest, 'defaults', 'container'], 'OU=Edited,DC=acme,DC=test');
    const before = text.split('\n');
    const after = edited.split('\n');
    const changed = after.filter((line) => !before.includes(line));
    // The edited line, and `defaults:` where the destination had none.
    const expected = (l: string) => l.includes('OU=Edited') || l.trim() === 'defaults:';
    assert.ok(changed.length <= 2 && changed.every(expected), `${path}: ${changed.join('\n')}`);
    assert.ok(Math.abs(before.length - after.length) <= 2, path);
  }
  // A new rule at the end: the lines before it are untouched, bracket padding and all.
  const text = 'destinations:\n  ad:\n    attributes:\n      sn: { from: family_name }   # padded\n    rules:\n      - name: a\n        when: person.team == "x"\n        then: { groups: [A] }\n';
  const added = append(text, ['destinations', 'ad', 'rules'], { name: 'b', when: 'true' });
  assert.ok(added.startsWith(text), added);
});
