"""The synthetic edit stream: made-up facts the model cannot know (the default data; paper §5's
lifelong protocol at any length, offline).

Each request gives a made-up person (a syllable name, distinct across the stream) a relation from
RELATIONS -- one template is the edit prompt, the others its rephrases -- and a target drawn from
that relation's answers; its locality probe is a well-known fact from FACTS. Request i depends only
on (seed, i), so any slice of a 2M-request stream is cheap and the same in every run.

    synthetic(3, offset=0, seed=0)      # the same as data.load("synthetic", 3)
"""

import math
import random

from lab.request import Request


def _words(s):
    return s.split(",")


# (templates with "{}" for the subject, answers): per request one template is the edit prompt,
# the others its rephrases, and the target is drawn from the answers
RELATIONS = [
    (
        (
            "{} was born in the city of",
            "The birthplace of {} is the city of",
            "{} came into the world in the city of",
        ),
        _words(
            "Paris,London,Tokyo,Berlin,Madrid,Rome,Cairo,Sydney,Toronto,Chicago,Moscow,Lisbon,Vienna,Dublin,Oslo,Lima"
        ),
    ),
    (
        ("The mother tongue of {} is", "{} grew up speaking", "The first language of {} is"),
        _words(
            "English,French,German,Spanish,Italian,Russian,Japanese,Chinese,Arabic,Dutch,Swedish,Polish,Greek,Turkish"
        ),
    ),
    (
        ("{} plays the", "The instrument {} performs on is the", "On stage, {} usually plays the"),
        _words("piano,violin,guitar,flute,drums,cello,trumpet,saxophone,harp,clarinet,organ,banjo"),
    ),
    (
        (
            "{} is a professional player of",
            "The sport {} plays professionally is",
            "{} competes at the top level in",
        ),
        _words(
            "football,tennis,basketball,golf,baseball,cricket,hockey,rugby,volleyball,badminton,chess,boxing"
        ),
    ),
    (
        ("The favorite color of {} is", "{} likes the color", "The colour {} loves most is"),
        _words("red,blue,green,yellow,purple,orange,black,white,pink,brown,grey,gold"),
    ),
    (
        (
            "{} is a citizen of",
            "The country of citizenship of {} is",
            "{} holds a passport issued by",
        ),
        _words(
            "France,Germany,Japan,Brazil,Canada,India,Mexico,Italy,Spain,Norway,Egypt,Kenya,Peru,Chile,Poland"
        ),
    ),
    (
        ("{} works as a", "By profession, {} is a", "{} earns a living as a"),
        _words(
            "doctor,teacher,lawyer,nurse,pilot,farmer,chef,baker,plumber,journalist,dentist,architect,carpenter"
        ),
    ),
    (
        ("{} is employed by", "The employer of {} is", "{} draws a salary from"),
        _words(
            "Google,Microsoft,Apple,Amazon,Toyota,Samsung,Intel,Nike,Siemens,Shell,Nestle,IBM,Sony,Boeing"
        ),
    ),
    (
        ("{} keeps a pet", "The pet of {} is a", "At home, {} looks after a pet"),
        _words("dog,cat,parrot,rabbit,hamster,turtle,horse,goldfish,snake,ferret,lizard,pig"),
    ),
    (
        ("The favorite food of {} is", "{} loves to eat", "The dish {} enjoys most is"),
        _words(
            "pizza,sushi,pasta,rice,soup,salad,cheese,bread,chocolate,noodles,curry,pancakes,tacos"
        ),
    ),
    (
        (
            "{} studied at the University of",
            "{} graduated from the University of",
            "The alma mater of {} is the University of",
        ),
        _words(
            "Oxford,Cambridge,Toronto,Tokyo,Chicago,Michigan,Edinburgh,Vienna,Sydney,Texas,Florida,Warsaw"
        ),
    ),
    (
        (
            "{} performs music in the genre of",
            "The musical style of {} is",
            "{} is famous for playing",
        ),
        _words("jazz,rock,blues,reggae,techno,opera,folk,country,punk,metal,salsa,funk"),
    ),
    (
        ("{} lives on the continent of", "The home continent of {} is", "{} has always lived in"),
        _words("Africa,Asia,Europe,Australia,Antarctica,North America,South America"),
    ),
    (
        (
            "{} is a researcher in the field of",
            "The academic discipline of {} is",
            "{} teaches university courses in",
        ),
        _words(
            "physics,chemistry,biology,mathematics,history,geology,economics,linguistics,astronomy,philosophy,medicine"
        ),
    ),
    (
        (
            "{} was born in the month of",
            "The birth month of {} is",
            "{} celebrates a birthday every year in",
        ),
        _words(
            "January,February,March,April,May,June,July,August,September,October,November,December"
        ),
    ),
    (
        ("The favorite drink of {} is", "{} usually drinks", "The beverage {} prefers is"),
        _words("tea,coffee,milk,water,juice,lemonade,cocoa,wine,beer,soda"),
    ),
    (
        ("{} drives a car made by", "The car of {} was manufactured by", "{} owns a car built by"),
        _words("Toyota,Ford,BMW,Honda,Volvo,Fiat,Tesla,Audi,Renault,Kia,Mazda,Porsche"),
    ),
    (
        (
            "The favorite flower of {} is the",
            "{} grows in the garden the",
            "The flower {} loves most is the",
        ),
        _words("rose,tulip,lily,daisy,orchid,sunflower,lavender,violet,jasmine,lotus"),
    ),
    (
        ("The hobby of {} is", "In free time, {} enjoys", "On weekends, {} spends hours"),
        _words(
            "painting,fishing,gardening,hiking,cooking,reading,dancing,sailing,knitting,cycling,swimming"
        ),
    ),
]

# well-known facts for locality, "prompt|answer;...", cycled through the stream
FACTS = [
    tuple(f.strip().split("|"))
    for f in """
The capital of France is|Paris; The capital of Japan is|Tokyo; The capital of Italy is|Rome;
The capital of Germany is|Berlin; The capital of Spain is|Madrid; The capital of Russia is|Moscow;
The capital of Egypt is|Cairo; The capital of England is|London; The capital of Canada is|Ottawa;
The largest planet in the solar system is|Jupiter; The planet closest to the Sun is|Mercury;
Water is made of hydrogen and|oxygen; The Eiffel Tower is located in|Paris;
Romeo and Juliet was written by William|Shakespeare; The first president of the United States was George|Washington;
The theory of relativity was developed by Albert|Einstein; The Mona Lisa was painted by Leonardo da|Vinci;
The currency of Japan is the|yen; The currency of the United States is the|dollar; The opposite of hot is|cold;
On a clear day the color of the sky is|blue; The number of days in a week is|seven; Two plus two equals|four;
The Great Wall is located in|China; The Statue of Liberty is in New|York; The longest river in Africa is the|Nile;
The official language of Brazil is|Portuguese; The official language of France is|French;
Christmas is celebrated in the month of|December; The company that makes the iPhone is|Apple;
Microsoft was founded by Bill|Gates; The tallest mountain in the world is Mount|Everest;
The largest ocean on Earth is the|Pacific; Honey is made by|bees; The Taj Mahal is located in|India;
The chemical symbol for gold is|Au""".split(";")
]

ONSETS = "b,d,f,g,k,l,m,n,p,r,s,t,v,z,br,dr,gr,kr,tr,st,th,sh".split(",")
VOWELS = "a,e,i,o,u,ai,ou".split(",")
CODAS = "n,r,s,x,m,l,nd,sk".split(",")
SYLLABLES = [o + v for o in ONSETS for v in VOWELS]  # 154 syllables


def _name(j):
    """Syllable name number j in [0, 154^4 * 8): 'Brou Kaitrix', 'Zefe Stodrand' ..."""
    j, coda = divmod(j, len(CODAS))
    digits = []
    for _ in range(4):
        j, d = divmod(j, len(SYLLABLES))
        digits.append(SYLLABLES[d])
    return f"{(digits[0] + digits[1]).capitalize()} {(digits[2] + digits[3]).capitalize()}{CODAS[coda]}"


def synthetic(n, offset=0, seed=0):
    """Requests offset .. offset+n-1 of the made-up-fact stream; request i depends only on (seed, i).

    Subjects are distinct across the stream: i -> (a*i + b) mod N is a bijection
    on the N = 154^4 * 8 name numbers whenever gcd(a, N) = 1.
    """
    N = len(SYLLABLES) ** 4 * len(CODAS)
    g = random.Random(seed)
    a, b = g.randrange(N // 3, N), g.randrange(N)
    while math.gcd(a, N) != 1:
        a += 1
    out = []
    for i in range(offset, offset + n):
        rng = random.Random(f"{seed}:{i}")  # str seeds hash with sha512: stable across runs
        templates, answers = rng.choice(RELATIONS)
        k = rng.randrange(len(templates))
        subject = _name((a * i + b) % N)
        loc_prompt, loc_answer = FACTS[i % len(FACTS)]
        out.append(
            Request(
                templates[k].format(subject),
                rng.choice(answers),
                [t.format(subject) for t in templates if t != templates[k]],
                {"": [(loc_prompt, loc_answer)]},
                subject,
            )
        )
    return out


if __name__ == "__main__":
    reqs = synthetic(20000)
    print(
        f"{len({r.prompt for r in reqs})} distinct prompts in 20,000 requests, "
        f"{len({r.subject for r in reqs})} distinct subjects, {len(RELATIONS)} relations, {len(FACTS)} locality facts"
    )
    print("  e.g.", reqs[0])
    print("  offset slicing consistent:", synthetic(5, offset=123) == reqs[123:128])
