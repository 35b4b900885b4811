//! Word lists the demo data is built from: enough variety for search and
//! leaderboards to look like a real user base, small enough to read.

pub const FIRST_NAMES: &[&str] = &[
    "Ada", "Alan", "Amara", "Anna", "Aiko", "Bea", "Ben", "Carlos", "Chen", "Chloe", "Dana",
    "David", "Dmitri", "Elena", "Emil", "Emma", "Farah", "Felix", "Grace", "Hana", "Hugo",
    "Ines", "Ivan", "Jada", "Jonas", "José", "Kai", "Karin", "Lars", "Leila", "Liam", "Lina",
    "Lucas", "Maya", "Mei", "Mia", "Nadia", "Noah", "Nora", "Omar", "Oskar", "Priya", "Quinn",
    "Rafael", "Rosa", "Sam", "Sara", "Sofia", "Tariq", "Theo", "Uma", "Victor", "Wei", "Yara",
    "Yusuf", "Zoe", "Zoë", "Björn", "Chiara", "Mateo",
];

pub const LAST_NAMES: &[&str] = &[
    "Abbott", "Adeyemi", "Andersson", "Bauer", "Becker", "Bianchi", "Chen", "Costa", "Dubois",
    "Eriksen", "Fischer", "García", "Gonzalez", "Haddad", "Hansen", "Ito", "Jansen", "Kim",
    "Kowalski", "Kumar", "Larsen", "Lee", "Lopez", "Martin", "Meyer", "Müller", "Nakamura",
    "Nguyen", "Novak", "Okafor", "Olsen", "Patel", "Petrov", "Quinn", "Rossi", "Sato", "Schmidt",
    "Silva", "Singh", "Smith", "Suzuki", "Tanaka", "Taylor", "Torres", "Wagner", "Wang", "Weber",
    "Williams", "Yamamoto", "Zhang", "Øberg", "Şahin",
];

pub const SUBJECTS: &[&str] = &[
    "Mathematics", "Physics", "Chemistry", "Biology", "History", "Literature", "Spanish",
    "French", "German", "Japanese", "Computer Science", "Statistics", "Economics", "Philosophy",
    "Music Theory", "Art History", "Geography", "Psychology", "Linear Algebra", "Calculus",
];

pub const TODO_VERBS: &[&str] = &[
    "Review", "Finish", "Read", "Summarise", "Practise", "Revise", "Outline", "Memorise",
    "Draft", "Submit",
];

pub const TODO_OBJECTS: &[&str] = &[
    "chapter 3", "problem set", "lecture notes", "flashcards", "essay", "lab report",
    "past papers", "vocabulary list", "reading list", "group project", "exam timetable",
    "bibliography",
];

pub const ROOM_NAMES: &[&str] = &[
    "Late night grind", "Exam prep", "Pomodoro club", "Quiet library", "Study buddies",
    "Morning owls", "Thesis writers", "Language exchange", "Maths help", "Coding dojo",
];

pub const MESSAGE_WORDS: &[&str] = &[
    "anyone", "starting", "a", "pomodoro", "now", "just", "finished", "the", "chapter", "on",
    "integrals", "who", "wants", "to", "review", "flashcards", "later", "great", "session",
    "today", "break", "in", "five", "minutes", "exam", "tomorrow", "wish", "me", "luck",
    "thanks", "for", "help", "with", "physics", "homework", "let's", "meet", "library",
    "after", "lunch", "I", "need", "coffee", "deadline", "friday", "notes", "shared", "here",
    "good", "morning", "everyone", "focus", "mode", "on", "back", "again", "café", "résumé",
];
