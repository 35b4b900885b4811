// Starts GraphiQL on the page the server serves; a file of its own so the
// page's Content-Security-Policy can forbid inline scripts.
const fetcher = GraphiQL.createFetcher({ url: window.location.origin + '/graphql' });
const root = ReactDOM.createRoot(document.getElementById('graphiql'));
root.render(React.createElement(GraphiQL, {
  fetcher,
  defaultEditorToolsVisibility: true,
  defaultQuery: [
    '# studysync GraphiQL. Sign up or log in, then copy the token into the',
    '# Headers tab below as {"Authorization": "Bearer <token>"}.',
    '',
    'mutation SignUp {',
    '  signUp(input: {email: "you@example.org", name: "You", password: "a long password"}) {',
    '    token',
    '    user { id name email }',
    '  }',
    '}',
    '',
    'query Me {',
    '  me { id name email }',
    '  todos(first: 5) { edges { node { title completed } } }',
    '}',
    '',
  ].join('\n'),
  shouldPersistHeaders: true,
}));
