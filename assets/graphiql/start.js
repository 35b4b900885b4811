// Starts GraphiQL on the page the server serves; a file of its own so the
// page's Content-Security-Policy can forbid inline scripts.
//
// Signing in: the token of any AuthPayload an operation returns (signUp,
// logIn, changePassword, under any alias) is kept in this browser and sent
// as `Authorization: Bearer <token>` with every later operation, queries,
// mutations and subscriptions alike, unless the Headers tab sets an
// Authorization of its own. The bar above the editor says who is signed in
// and signs out; logOutEverywhere and deleteAccount sign out too.
(function () {
  'use strict';

  const TOKEN_KEY = 'studysync.graphiql.token';
  const NAME_KEY = 'studysync.graphiql.name';
  const origin = window.location.origin;

  const DEFAULT_QUERY = [
    '# studysync GraphiQL: run SignUp (or LogIn) first; the token it returns is',
    '# sent with every operation after it (the bar above says who you are).',
    '# Then try one example per area. Press the play button to pick one.',
    '',
    '# Accounts: create one, or log in to an existing one.',
    'mutation SignUp {',
    '  signUp(input: {email: "you@example.org", name: "You", password: "a long password"}) {',
    '    token',
    '    user { id name email }',
    '  }',
    '}',
    '',
    'mutation LogIn {',
    '  logIn(email: "you@example.org", password: "a long password") {',
    '    token',
    '    user { id name }',
    '  }',
    '}',
    '',
    '# Writes: a todo, a study session, a room and a message in it.',
    'mutation Write {',
    '  createTodo(input: {title: "Read chapter 3"}) { id title completed }',
    '  logStudySession(input: {subject: "Maths", minutes: 45}) { id minutes startedAt }',
    '  createRoom(name: "Study group") { id name }',
    '}',
    '',
    '# History: a room\'s messages, newest first (put a room id from Write here).',
    'query History {',
    '  rooms { id name }',
    '  messages(roomId: "00000000-0000-0000-0000-000000000000", first: 10) {',
    '    edges { cursor node { body createdAt editedAt sender { name } } }',
    '    pageInfo { hasNextPage endCursor }',
    '  }',
    '}',
    '',
    '# Search: people by name, messages in your rooms.',
    'query Search {',
    '  searchUsers(query: "you", first: 5) { edges { node { id name } } }',
    '  searchMessages(query: "chapter", first: 5) { edges { node { body room { name } } } }',
    '}',
    '',
    '# Boards: this week\'s leaderboard, your rank and your neighbours.',
    'query Boards {',
    '  leaderboard(period: WEEK, first: 10) { edges { node { rank minutes user { name } } } }',
    '  myRank(period: WEEK) { rank minutes }',
    '  leaderboardAround(period: WEEK, radius: 2) { rank minutes user { name } }',
    '}',
    '',
    '# Stats: your study and todos, and the global dashboard.',
    'query Stats {',
    '  studyStats { totalMinutes sessions bySubject { subject minutes } completionRate }',
    '  dashboard(period: WEEK) { activeUsers totalMinutes topSubjects { subject minutes } }',
    '  syncStatus { status syncLagSeconds queueSize }',
    '}',
    '',
    '# Subscription: the board as it changes (log a session in another tab).',
    'subscription LiveBoard {',
    '  leaderboardChanged(period: WEEK, first: 5) { rank minutes user { name } }',
    '}',
    '',
  ].join('\n');

  function storedToken() {
    try {
      return window.localStorage.getItem(TOKEN_KEY);
    } catch (e) {
      return null;
    }
  }

  function store(token, name) {
    try {
      if (token) {
        window.localStorage.setItem(TOKEN_KEY, token);
        window.localStorage.setItem(NAME_KEY, name || '');
      } else {
        window.localStorage.removeItem(TOKEN_KEY);
        window.localStorage.removeItem(NAME_KEY);
      }
    } catch (e) {
      // Storage refused (private mode): the session lasts as long as the page.
    }
    session.token = token || null;
    session.name = token ? name || '' : '';
    showSession();
  }

  const session = { token: storedToken(), name: '' };
  try {
    session.name = window.localStorage.getItem(NAME_KEY) || '';
  } catch (e) {
    session.name = '';
  }

  // The bar above the editor: who is signed in, and a way out.
  const bar = document.getElementById('session');
  const label = document.createElement('span');
  const signOut = document.createElement('button');
  signOut.type = 'button';
  signOut.textContent = 'Sign out';
  signOut.addEventListener('click', function () {
    store(null);
  });
  if (bar) {
    bar.appendChild(label);
    bar.appendChild(signOut);
  }

  function showSession() {
    if (session.token) {
      const who = session.name ? 'Signed in as ' + session.name : 'Signed in';
      label.textContent = who + ': operations send Authorization: Bearer \u2026' + session.token.slice(-8) + ' ';
      signOut.hidden = false;
    } else {
      label.textContent = 'Not signed in: run SignUp or LogIn and its token is used from then on. ';
      signOut.hidden = true;
    }
  }
  showSession();

  function hasAuthorization(headers) {
    return Object.keys(headers).some(function (key) {
      return key.toLowerCase() === 'authorization';
    });
  }

  // What a response says about the session: a new token, or none any more.
  function learn(result) {
    const data = result && result.data;
    if (!data || typeof data !== 'object') {
      return;
    }
    const values = Object.keys(data).map(function (key) {
      return data[key];
    });
    const signedOut = Object.keys(data).some(function (key) {
      return data[key] !== null && (key === 'logOutEverywhere' || key === 'deleteAccount');
    });
    const payload = values.filter(function (value) {
      return value && typeof value === 'object' && typeof value.token === 'string';
    }).pop();
    if (payload) {
      store(payload.token, payload.user && payload.user.name);
    } else if (signedOut) {
      store(null);
    }
  }

  const base = GraphiQL.createFetcher({
    url: origin + '/graphql',
    subscriptionUrl: origin.replace(/^http/, 'ws') + '/graphql/ws',
  });

  function fetcher(params, options) {
    const opts = Object.assign({}, options);
    const headers = Object.assign({}, opts.headers);
    if (session.token && !hasAuthorization(headers)) {
      headers.Authorization = 'Bearer ' + session.token;
    }
    opts.headers = headers;
    const result = base(params, opts);
    if (result && typeof result.then === 'function') {
      return result.then(function (value) {
        learn(value);
        return value;
      });
    }
    return result;
  }

  const root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultEditorToolsVisibility: true,
    defaultQuery: DEFAULT_QUERY,
    shouldPersistHeaders: true,
  }));

  // For the tests that run this file outside a browser.
  window.studysyncGraphiQL = { fetcher: fetcher, signOut: signOut, label: label, defaultQuery: DEFAULT_QUERY };
})();
