import type { Command } from 'commander';
import { EXIT, type Violation } from '../../src/index.js';
import type { Context } from '../context.js';
import { ExitWith } from '../exit-codes.js';
import { styles, table } from '../io.js';
import { type Act, NEAREST_HELP, nearestOf, printJson, short } from './shared.js';

/** Violations for people: key, where in its value, what is wrong, and the rule (with its pattern). */
export function printViolations(ctx: Context, violations: Violation[]): void {
  const s = styles(ctx.io);
  const rows = [['KEY', 'AT', 'PROBLEM', 'RULE'].map(s.bold)];
  for (const v of violations) {
    rows.push([v.key, v.pointer || '/', s.red(v.message), s.dim(`${v.pattern} ${v.rule}`)]);
  }
  ctx.io.out(table(rows));
}

export function registerSchemas(program: Command, act: Act): void {
  program
    .command('validate')
    .description(
      'check every value against the JSON Schemas the branch declares (.store/schema.json); exit 4 if any breaks them',
    )
    .option('--at <rev>', 'check this revision or ISO time instead of the branch head')
    .option('--nearest', NEAREST_HELP)
    .addHelpText('after', '\nExamples:\n  $ store validate\n  $ store validate --at main~20 --json')
    .action(
      act(async (ctx: Context, opts: { at?: string; nearest?: boolean }) => {
        const store = await ctx.store();
        const r = await store.validate({ branch: ctx.options.branch, at: opts.at, nearest: nearestOf(opts) });
        if (ctx.options.json) printJson(ctx, r);
        else {
          if (r.violations.length > 0) printViolations(ctx, r.violations);
          const n = (count: number, what: string) => `${count} ${what}${count === 1 ? '' : 's'}`;
          const against = r.patterns.length === 0 ? 'no schemas declared' : n(r.patterns.length, 'schema');
          const verdict = r.valid ? 'valid' : n(r.violations.length, 'violation');
          ctx.io.out(`${short(r.commit)}: ${n(r.checked, 'value')} checked against ${against}: ${verdict}\n`);
        }
        if (!r.valid) throw new ExitWith(EXIT.conflict);
      }),
    );
}
