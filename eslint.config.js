// ESLint for cfgd: typescript-eslint's type-checked rules over the TypeScript sources.
// Layer boundaries are checked by dependency-cruiser (.dependency-cruiser.cjs), formatting by Prettier;
// `npm run lint` runs all three.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** The rules that guard against values typed `any` flowing around. */
const UNSAFE_ANY = [
  '@typescript-eslint/no-unsafe-argument',
  '@typescript-eslint/no-unsafe-assignment',
  '@typescript-eslint/no-unsafe-call',
  '@typescript-eslint/no-unsafe-member-access',
  '@typescript-eslint/no-unsafe-return',
];
const off = (rules) => Object.fromEntries(rules.map((rule) => [rule, 'off']));

export default tseslint.config(
  { ignores: ['generated/**', 'dist/**', 'node_modules/**', 'bench/results/**', 'scratch/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // A leading underscore marks a parameter kept for its place in a signature.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // A `let` assigned once after a closure that reads it was made, or destructured beside a
      // variable that is reassigned, cannot be a `const`.
      'prefer-const': ['error', { destructuring: 'all', ignoreReadBeforeAssign: true }],
      // `async` without `await` is how an implementation of a promise-returning contract turns its
      // throws into rejections (a store's validation error must reject, not throw at the call).
      '@typescript-eslint/require-await': 'off',
      // Streams and waits end with their AbortSignal's reason, which is whatever aborted them.
      '@typescript-eslint/prefer-promise-reject-errors': [
        'error',
        { allowThrowingAny: true, allowThrowingUnknown: true },
      ],
    },
  },
  {
    // The RethinkDB driver's typings lack most of ReQL: this one file builds queries untyped and
    // types each at its boundary (see its header), so nothing untyped leaves it.
    files: ['src/store/rethinkdb/queries.ts'],
    rules: { ...off(UNSAFE_ANY), '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Tests and the benchmark navigate parsed JSON and raw driver results in their assertions.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      ...off(UNSAFE_ANY),
      '@typescript-eslint/no-explicit-any': 'off',
      // Tests pass generated codecs' methods (Struct.encode …) around; they use no `this`.
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  { files: ['**/*.js', '**/*.cjs'], ...tseslint.configs.disableTypeChecked },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } },
  },
);
