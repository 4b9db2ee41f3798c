// Loaded with --import: records every module URL the process resolves, as "<pid> <url>" lines in
// $RERANK_TEST_IMPORT_LOG, so a test can tell what a process loaded.
import { register } from 'node:module';

const hooks = `
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (process.env.RERANK_TEST_IMPORT_LOG) appendFileSync(process.env.RERANK_TEST_IMPORT_LOG, process.pid + ' ' + result.url + '\\n');
  return result;
}`;
register('data:text/javascript,' + encodeURIComponent(hooks));
