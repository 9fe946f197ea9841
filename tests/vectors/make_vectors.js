// Known-answer vectors for the receiver's signature check, made the way eduMe signs:
//   crypto.createHmac('sha256', signatureSecret).update(JSON.stringify(payload)).digest('hex')
// Run: node tests/vectors/make_vectors.js > tests/vectors/signature_vectors.json
// Output is deterministic; tests/receiver/test_signature_vectors.py re-runs it and compares.
'use strict';
const crypto = require('crypto');

const sign = (secret, text) => crypto.createHmac('sha256', secret).update(text).digest('hex');

const SECRET = 'whsec_edume_known_answer';
const SECRETS = [SECRET, 'sécret-ü-🔑'];

const course = {
  type: 'course.added',
  payload: {
    group: { groupId: 1297 }, teams: [],
    course: { courseId: 14148, courseKey: 'reboarding_your_workforce4900', title: 'Reboarding your workforce' },
    modules: [{ moduleId: 15010 }],
    activities: [
      { activityId: 8558, published: false, type: 'lesson' },
      { activityId: 2642, published: false, type: 'survey' },
      { activityId: 6743, published: false, type: 'assessment' },
    ],
    version: 1,
  },
  timestamp: '2023-05-31T11:42:57.633Z',
};
const titled = (title) => ({
  type: 'course.updated',
  payload: { course: { courseId: 14148, title }, change: { type: 'title.changed', previousTitle: 'Old' } },
  timestamp: '2023-06-01T08:00:00.000Z',
});

// Objects whose JSON.stringify is the exact request body eduMe sends (form "raw").
const compact = [
  ['doc_sample_course_added', course],
  ['accents', titled('Sécurité à l’entrepôt — niveau avancé, Ærø, Ñandú, Ünïcødé')],
  ['cjk', titled('安全培训：仓库操作 第二章 / 안전 교육 / 倉庫の安全')],
  ['emoji', titled('Onboarding 🚀🎓 👩🏽‍💻 team 🇬🇧')],
  ['quotes_and_backslashes', titled('He said "hi" \\ C:\\dir\\file.txt \\"quoted\\" \n\ttab \u0001 \u2028 \u007f')],
  ['floats', { type: 'learner.activity.finished', payload: {
    result: { score: 87.5, passed: true },
    numbers: [0.1, -2.25, 1.5, 1e21, 1e-7, 123456789.123, 5e-324, 1.7976931348623157e308,
      0.000001, 1e-6, 123e-20, 2.5e25, 100.0, -0],
  }, timestamp: '2023-06-02T09:30:00.001Z' }],
  ['integers_up_to_2_pow_53_minus_1', { type: 'learner.added', payload: {
    user: { userId: 9007199254740991, externalUserId: 'emp-00172' },
    ints: [0, -1, 1, 2147483647, 4294967296, -9007199254740991, 9007199254740991],
  }, timestamp: '2023-06-01T08:00:00.000Z' }],
  ['nested_arrays', { type: 'course.updated', payload: {
    matrix: [[1, [2, [3, [4, []]]]], [], [[[]]], [{ a: [{ b: [null, true, false, 'x'] }] }]],
  }, timestamp: '2023-06-03T10:00:00.000Z' }],
  ['integer_like_keys_reordered_by_js', JSON.parse('{"b":1,"2":"two","1":"one","01":"zero-one","-1":"minus"}')],
  ['empty_object', {}],
];

// Request bodies that are NOT the signed string: the receiver must re-serialise them
// (form "reserialized"). The signature is over JSON.stringify(JSON.parse(raw)).
const reserialized = [
  ['pretty_printed', JSON.stringify(course, null, 2)],
  ['float_written_with_trailing_zero', '{"type":"x","payload":{"score":1.0,"big":1E+21,"tiny":0.0000001}}'],
  ['escaped_unicode_in_raw_text', '{"type":"x","payload":{"title":"S\\u00e9curit\\u00e9 \\ud83d\\ude80 \\/"}}'],
  ['duplicate_key_last_wins', '{"type":"x","a":1,"payload":{},"a":2}'],
];

const vectors = [];
for (const [name, value] of compact) {
  const body = JSON.stringify(value);
  SECRETS.forEach((secret, i) => vectors.push({
    name: i === 0 ? name : `${name}__unicode_secret`, secret, form: 'raw', body, signature: sign(secret, body),
  }));
}
for (const [name, raw] of reserialized) {
  vectors.push({
    name, secret: SECRET, form: 'reserialized', body: raw,
    signature: sign(SECRET, JSON.stringify(JSON.parse(raw))),
  });
}
process.stdout.write(JSON.stringify({
  about: 'HMAC-SHA256 hex over JSON.stringify, made by tests/vectors/make_vectors.js (Node.js crypto)',
  vectors,
}, null, 2) + '\n');
