import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dataDirectory, readVariables, Variable, VARIABLE_NAMES, VARIABLES } from './environment-variables';

/** The rows of the README's configuration table, cells trimmed. */
function readmeConfigurationRows(): string[][] {
  const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('| variable'));
  return table
    .slice(0, table.indexOf('\n\n'))
    .split('\n')
    .slice(2)
    .map((line) =>
      line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim()),
    );
}

/** The row the README should hold for a variable, from the table the service validates with. */
function documentedRow(name: string, variable: Variable<unknown>): string[] {
  const value = variable.default as string | number | boolean | string[] | undefined;
  const text = Array.isArray(value) ? value.join(',') : value === undefined ? 'unset' : String(value);
  const shown = variable.documentedDefault ?? (/^\w+$/.test(text) ? text : `\`${text}\``);
  return [`\`${name}\``, shown, variable.meaning];
}

describe('the table of environment variables', () => {
  it("is what the README's configuration table documents, row for row", () => {
    const expected = VARIABLE_NAMES.map((name) => documentedRow(name, VARIABLES[name] as Variable<unknown>));
    expect(readmeConfigurationRows()).toEqual(expected);
  });

  it('reads every variable unset as its default, with no problem', () => {
    const { settings, problems } = readVariables({});
    expect(problems).toEqual([]);
    for (const name of VARIABLE_NAMES) {
      expect([name, settings[name]]).toEqual([name, VARIABLES[name].default]);
    }
  });

  it('names each invalid variable once, in the words of its rule, never with its value', () => {
    const { problems } = readVariables({ PORT: '70000', LOG_LEVEL: 'loud', ADMIN_API_TOKEN: 'too-short' });
    expect(problems).toEqual([
      'PORT must be an integer between 0 and 65535',
      'ADMIN_API_TOKEN must be one or more tokens of at least 16 characters, separated by commas, each optionally "name:token"',
      'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent',
    ]);
  });

  it('gives the tools that run without the configuration the same DATA_DIR', () => {
    expect(dataDirectory({})).toBe('.data');
    expect(dataDirectory({ DATA_DIR: '  ' })).toBe('.data');
    expect(dataDirectory({ DATA_DIR: ' /var/lib/swp ' })).toBe('/var/lib/swp');
    expect(readVariables({ DATA_DIR: ' /var/lib/swp ' }).settings.DATA_DIR).toBe('/var/lib/swp');
  });
});
