// The condition builder's parser and printer: what it places it prints back with the same
// meaning; what it cannot place it keeps as written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, print } from '../src/rules/condition';

test('comparisons, groups and NOT are placed', () => {
  const c = parse('person.department == "Engineering" && has(person.custom.level) && person.custom.level >= 5');
  assert.deepEqual(c, {
    t: 'all',
    items: [
      { t: 'cmp', field: 'department', op: '==', value: 'Engineering' },
      { t: 'cmp', field: 'custom.level', op: 'has', value: '' },
      { t: 'cmp', field: 'custom.level', op: '>=', value: '5' },
    ],
  });
  const nested = parse('person.status == "active" && (person.country in ["DE", "FR"] || !(person.team == "x"))');
  assert.equal(nested.t, 'all');
  assert.deepEqual(nested.t === 'all' && nested.items[1], {
    t: 'any',
    items: [
      { t: 'cmp', field: 'country', op: 'in', value: 'DE, FR' },
      { t: 'not', item: { t: 'cmp', field: 'team', op: '==', value: 'x' } },
    ],
  });
  assert.equal(print(nested), 'person.status == "active" && (person.country in ["DE", "FR"] || !(person.team == "x"))');
});

test('what is not a comparison stays as written', () => {
  const src = 'NormalizeCountry(Coalesce(person.country, "US")) in ["DE", "FR", "GB", "IE"]';
  assert.deepEqual(parse(src), { t: 'raw', text: src });
  assert.equal(print(parse(src)), src);
  const ternary = 'IsPresent(person.end_date) ? true : person.status == "active"';
  assert.deepEqual(parse(ternary), { t: 'raw', text: ternary });
  // A string holding operators is one value, not three parts.
  assert.deepEqual(parse('person.title == "R&&D || (QA)"'), { t: 'cmp', field: 'title', op: '==', value: 'R&&D || (QA)' });
  assert.deepEqual(parse('person.title.startsWith("Head")'), { t: 'cmp', field: 'title', op: 'startsWith', value: 'Head' });
});

test('printing then parsing again gives the same structure', () => {
  const sources = [
    'person.department == "Engineering"',
    'person.a == "1" || person.b == "2" && person.c != "3"',
    '!(person.status == "terminated" || person.status == "leaver")',
    '(person.a == "x")',
    'person.custom.level > 3 && person.email.endsWith("@acme.test")',
    "person.location == 'Zürich \\'HQ\\''",
  ];
  for (const s of sources) {
    const once = parse(s);
    assert.deepEqual(parse(print(once)), once.t === 'all' && once.items.length === 1 ? once.items[0] : once, s);
  }
});

test('an edited group is printed with the parentheses its meaning needs', () => {
  assert.equal(
    print({ t: 'all', items: [{ t: 'any', items: [{ t: 'cmp', field: 'a', op: '==', value: 'x' }, { t: 'raw', text: 'b || c' }] }, { t: 'cmp', field: 'n', op: '<', value: '3' }] }),
    '(person.a == "x" || (b || c)) && person.n < 3',
  );
  assert.equal(print({ t: 'any', items: [] }), 'false');
  assert.equal(print({ t: 'cmp', field: 'team', op: 'in', value: 'a, b , 7' }), 'person.team in ["a", "b", 7]');
});
