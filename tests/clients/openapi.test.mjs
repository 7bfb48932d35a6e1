// openapi.test.mjs - the OpenAPI document edmd serves, validated by swagger-parser (OpenAPI
// 3.1 structure, every $ref resolved), as code generators and API tools will read it.
// Environment: EDMD_URL. Prints PASS/FAIL lines and "N passed, N failed, N skipped".
import SwaggerParser from '@apidevtools/swagger-parser';

const T = { pass: 0, fail: 0 };
function check(desc, cond, detail) {
  if (cond) { T.pass++; console.log('PASS: ' + desc); } else { T.fail++; console.log('FAIL: ' + desc + (detail === undefined ? '' : ': ' + detail)); }
}
const doc = await (await fetch(process.env.EDMD_URL + '/openapi.json')).json();
try {
  const api = await SwaggerParser.validate(structuredClone(doc));
  check('swagger-parser validates /openapi.json', true);
  check('servers: the address edmd was reached at', api.servers?.[0]?.url === process.env.EDMD_URL, JSON.stringify(api.servers));
  const paths = Object.keys(api.paths);
  check('documents /v1/models/{id} and GET /v1/jobs', paths.includes('/v1/models/{id}') && api.paths['/v1/jobs'].get !== undefined);
} catch (e) {
  check('swagger-parser validates /openapi.json', false, e.message);
}
console.log(T.pass + ' passed, ' + T.fail + ' failed, 0 skipped');
process.exit(T.fail ? 1 : 0);
