# Problems 76-150 of the package's own problem set (see basic_problems.py).
P = []
def p(name, desc, sol, tests):
    P.append((name, desc, sol, tests))

p("celsius_list", "Write a function celsius_list(temps) that converts a list of Fahrenheit temperatures to Celsius ((F - 32) * 5 / 9).",
  "def celsius_list(temps):\n    return [(f - 32) * 5 / 9 for f in temps]",
  ["celsius_list([32, 212]) == [0, 100]", "celsius_list([]) == []", "celsius_list([-40]) == [-40]"])
p("count_digits", "Write a function count_digits(n) that returns the number of decimal digits of a non-negative integer n.",
  "def count_digits(n):\n    return len(str(n))",
  ["count_digits(12345) == 5", "count_digits(0) == 1", "count_digits(10) == 2"])
p("reverse_list", "Write a function reverse_list(items) that returns a new list with the elements of items in reverse order.",
  "def reverse_list(items):\n    return items[::-1]",
  ["reverse_list([1, 2, 3]) == [3, 2, 1]", "reverse_list([]) == []", "reverse_list(['a']) == ['a']"])
p("sum_squares", "Write a function sum_squares(n) that returns 1*1 + 2*2 + ... + n*n.",
  "def sum_squares(n):\n    return sum(i * i for i in range(1, n + 1))",
  ["sum_squares(3) == 14", "sum_squares(0) == 0", "sum_squares(10) == 385"])
p("is_anagram", "Write a function is_anagram(a, b) that returns True if the strings a and b contain the same letters with the same counts.",
  "def is_anagram(a, b):\n    return sorted(a) == sorted(b)",
  ["is_anagram('listen', 'silent') is True", "is_anagram('abc', 'abd') is False", "is_anagram('', '') is True"])
p("common_elements", "Write a function common_elements(a, b) that returns the sorted list of values present in both lists a and b, without repeats.",
  "def common_elements(a, b):\n    return sorted(set(a) & set(b))",
  ["common_elements([1, 2, 3], [2, 3, 4]) == [2, 3]", "common_elements([], [1]) == []", "common_elements([1, 1], [1]) == [1]"])
p("zip_lists", "Write a function zip_lists(a, b) that returns a list of pairs (a[i], b[i]) for the length of the shorter list.",
  "def zip_lists(a, b):\n    return list(zip(a, b))",
  ["zip_lists([1, 2], ['a', 'b']) == [(1, 'a'), (2, 'b')]", "zip_lists([], [1]) == []", "zip_lists([1, 2, 3], [4]) == [(1, 4)]"])
p("dict_keys_sorted", "Write a function dict_keys_sorted(d) that returns the keys of the dictionary d as a sorted list.",
  "def dict_keys_sorted(d):\n    return sorted(d)",
  ["dict_keys_sorted({'b': 1, 'a': 2}) == ['a', 'b']", "dict_keys_sorted({}) == []", "dict_keys_sorted({3: 0, 1: 0}) == [1, 3]"])
p("sum_dict_values", "Write a function sum_dict_values(d) that returns the sum of the values of the dictionary d.",
  "def sum_dict_values(d):\n    return sum(d.values())",
  ["sum_dict_values({'a': 1, 'b': 2}) == 3", "sum_dict_values({}) == 0", "sum_dict_values({'x': -5}) == -5"])
p("invert_dict", "Write a function invert_dict(d) that returns a dictionary mapping each value of d to its key (values are distinct).",
  "def invert_dict(d):\n    return {v: k for k, v in d.items()}",
  ["invert_dict({'a': 1, 'b': 2}) == {1: 'a', 2: 'b'}", "invert_dict({}) == {}", "invert_dict({1: 'x'}) == {'x': 1}"])
p("word_lengths", "Write a function word_lengths(words) that returns a list with the length of each string in words.",
  "def word_lengths(words):\n    return [len(w) for w in words]",
  ["word_lengths(['a', 'abc']) == [1, 3]", "word_lengths([]) == []", "word_lengths(['']) == [0]"])
p("running_sum", "Write a function running_sum(nums) that returns the list of prefix sums of nums: element i is nums[0] + ... + nums[i].",
  "def running_sum(nums):\n    out = []\n    total = 0\n    for x in nums:\n        total += x\n        out.append(total)\n    return out",
  ["running_sum([1, 2, 3]) == [1, 3, 6]", "running_sum([]) == []", "running_sum([5, -5]) == [5, 0]"])
p("pairwise_sums", "Write a function pairwise_sums(a, b) that returns a list with a[i] + b[i] for two lists of equal length.",
  "def pairwise_sums(a, b):\n    return [x + y for x, y in zip(a, b)]",
  ["pairwise_sums([1, 2], [3, 4]) == [4, 6]", "pairwise_sums([], []) == []", "pairwise_sums([0], [-1]) == [-1]"])
p("count_consonants", "Write a function count_consonants(s) that returns the number of letters in s that are not vowels (a, e, i, o, u, any case).",
  "def count_consonants(s):\n    return sum(1 for c in s if c.isalpha() and c.lower() not in 'aeiou')",
  ["count_consonants('hello') == 3", "count_consonants('aeiou') == 0", "count_consonants('a b c!') == 2"])
p("first_char", "Write a function first_char(s) that returns the first character of s, or an empty string when s is empty.",
  "def first_char(s):\n    return s[:1]",
  ["first_char('hello') == 'h'", "first_char('') == ''", "first_char('Z') == 'Z'"])
p("is_empty", "Write a function is_empty(items) that returns True if the list items has no elements.",
  "def is_empty(items):\n    return len(items) == 0",
  ["is_empty([]) is True", "is_empty([0]) is False", "is_empty([[]]) is False"])
p("middle_element", "Write a function middle_element(items) that returns the middle element of a list with an odd number of elements.",
  "def middle_element(items):\n    return items[len(items) // 2]",
  ["middle_element([1, 2, 3]) == 2", "middle_element([7]) == 7", "middle_element([1, 2, 3, 4, 5]) == 3"])
p("count_greater", "Write a function count_greater(nums, k) that returns how many numbers in nums are strictly greater than k.",
  "def count_greater(nums, k):\n    return sum(1 for x in nums if x > k)",
  ["count_greater([1, 5, 10], 4) == 2", "count_greater([], 0) == 0", "count_greater([3, 3], 3) == 0"])
p("replace_char", "Write a function replace_char(s, old, new) that returns s with every occurrence of the character old replaced by new.",
  "def replace_char(s, old, new):\n    return s.replace(old, new)",
  ["replace_char('banana', 'a', 'o') == 'bonono'", "replace_char('', 'a', 'b') == ''", "replace_char('xyz', 'q', 'r') == 'xyz'"])
p("string_to_list", "Write a function string_to_list(s) that returns the list of characters of s.",
  "def string_to_list(s):\n    return list(s)",
  ["string_to_list('abc') == ['a', 'b', 'c']", "string_to_list('') == []", "string_to_list('a a') == ['a', ' ', 'a']"])
p("list_to_string", "Write a function list_to_string(chars) that joins a list of characters into one string.",
  "def list_to_string(chars):\n    return ''.join(chars)",
  ["list_to_string(['a', 'b']) == 'ab'", "list_to_string([]) == ''", "list_to_string(['x', ' ', 'y']) == 'x y'"])
p("divide_safe", "Write a function divide_safe(a, b) that returns a / b, or None when b is zero.",
  "def divide_safe(a, b):\n    if b == 0:\n        return None\n    return a / b",
  ["divide_safe(6, 3) == 2", "divide_safe(1, 0) is None", "divide_safe(5, 2) == 2.5"])
p("even_indices", "Write a function even_indices(items) that returns the elements of items at indices 0, 2, 4, ...",
  "def even_indices(items):\n    return items[::2]",
  ["even_indices([1, 2, 3, 4, 5]) == [1, 3, 5]", "even_indices([]) == []", "even_indices(['a', 'b']) == ['a']"])
p("odd_indices", "Write a function odd_indices(items) that returns the elements of items at indices 1, 3, 5, ...",
  "def odd_indices(items):\n    return items[1::2]",
  ["odd_indices([1, 2, 3, 4, 5]) == [2, 4]", "odd_indices([]) == []", "odd_indices(['a', 'b']) == ['b']"])
p("mean_of_two", "Write a function mean_of_two(a, b) that returns the average of two numbers.",
  "def mean_of_two(a, b):\n    return (a + b) / 2",
  ["mean_of_two(2, 4) == 3", "mean_of_two(1, 2) == 1.5", "mean_of_two(-3, 3) == 0"])
p("hypotenuse", "Write a function hypotenuse(a, b) that returns the length of the hypotenuse of a right triangle with legs a and b.",
  "def hypotenuse(a, b):\n    return (a * a + b * b) ** 0.5",
  ["hypotenuse(3, 4) == 5", "hypotenuse(5, 12) == 13", "hypotenuse(0, 0) == 0"])
p("is_odd", "Write a function is_odd(n) that returns True if the integer n is odd.",
  "def is_odd(n):\n    return n % 2 == 1",
  ["is_odd(3) is True", "is_odd(4) is False", "is_odd(-1) is True"])
p("count_true", "Write a function count_true(flags) that returns how many elements of a list of booleans are True.",
  "def count_true(flags):\n    return sum(1 for f in flags if f)",
  ["count_true([True, False, True]) == 2", "count_true([]) == 0", "count_true([False]) == 0"])
p("all_positive", "Write a function all_positive(nums) that returns True if every number in nums is greater than zero (True for an empty list).",
  "def all_positive(nums):\n    return all(x > 0 for x in nums)",
  ["all_positive([1, 2, 3]) is True", "all_positive([1, -2]) is False", "all_positive([]) is True"])
p("any_negative", "Write a function any_negative(nums) that returns True if at least one number in nums is below zero.",
  "def any_negative(nums):\n    return any(x < 0 for x in nums)",
  ["any_negative([1, -2]) is True", "any_negative([1, 2]) is False", "any_negative([]) is False"])
p("minutes_to_hours", "Write a function minutes_to_hours(m) that returns a tuple (hours, minutes) for a number of minutes m.",
  "def minutes_to_hours(m):\n    return (m // 60, m % 60)",
  ["minutes_to_hours(135) == (2, 15)", "minutes_to_hours(59) == (0, 59)", "minutes_to_hours(120) == (2, 0)"])
p("seconds_in_days", "Write a function seconds_in_days(d) that returns the number of seconds in d days.",
  "def seconds_in_days(d):\n    return d * 24 * 60 * 60",
  ["seconds_in_days(1) == 86400", "seconds_in_days(0) == 0", "seconds_in_days(2) == 172800"])
p("chunk_list", "Write a function chunk_list(items, size) that splits items into consecutive lists of length size (the last may be shorter).",
  "def chunk_list(items, size):\n    return [items[i:i + size] for i in range(0, len(items), size)]",
  ["chunk_list([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]", "chunk_list([], 3) == []", "chunk_list([1, 2], 2) == [[1, 2]]"])
p("rotate_left", "Write a function rotate_left(items, k) that returns items rotated left by k positions (k may exceed the length; an empty list stays empty).",
  "def rotate_left(items, k):\n    if not items:\n        return []\n    k %= len(items)\n    return items[k:] + items[:k]",
  ["rotate_left([1, 2, 3, 4], 1) == [2, 3, 4, 1]", "rotate_left([1, 2, 3], 3) == [1, 2, 3]", "rotate_left([], 2) == []", "rotate_left([1, 2, 3], 5) == [3, 1, 2]"])
p("binary_string", "Write a function binary_string(n) that returns the binary representation of a non-negative integer n as a string without prefix.",
  "def binary_string(n):\n    return bin(n)[2:]",
  ["binary_string(5) == '101'", "binary_string(0) == '0'", "binary_string(8) == '1000'"])
p("from_binary", "Write a function from_binary(s) that converts a string of 0s and 1s to the integer it represents in base 2.",
  "def from_binary(s):\n    return int(s, 2)",
  ["from_binary('101') == 5", "from_binary('0') == 0", "from_binary('11111111') == 255"])
p("count_ones", "Write a function count_ones(n) that returns the number of 1 bits in the binary representation of a non-negative integer n.",
  "def count_ones(n):\n    return bin(n).count('1')",
  ["count_ones(7) == 3", "count_ones(0) == 0", "count_ones(8) == 1"])
p("is_power_of_two", "Write a function is_power_of_two(n) that returns True if n is a positive power of two (1, 2, 4, 8, ...).",
  "def is_power_of_two(n):\n    return n > 0 and n & (n - 1) == 0",
  ["is_power_of_two(8) is True", "is_power_of_two(6) is False", "is_power_of_two(1) is True", "is_power_of_two(0) is False"])
p("collatz_steps", "Write a function collatz_steps(n) that returns how many steps the Collatz process (n/2 if even, 3n+1 if odd) takes to reach 1 from a positive n.",
  "def collatz_steps(n):\n    steps = 0\n    while n != 1:\n        n = n // 2 if n % 2 == 0 else 3 * n + 1\n        steps += 1\n    return steps",
  ["collatz_steps(1) == 0", "collatz_steps(2) == 1", "collatz_steps(6) == 8", "collatz_steps(27) == 111"])
p("title_case", "Write a function title_case(s) that returns s with each word capitalized and the other letters in lower case (like str.title()).",
  "def title_case(s):\n    return s.title()",
  ["title_case('hello world') == 'Hello World'", "title_case('PYTHON') == 'Python'", "title_case('') == ''"])
p("remove_vowels", "Write a function remove_vowels(s) that returns s without its vowels (a, e, i, o, u, any case).",
  "def remove_vowels(s):\n    return ''.join(c for c in s if c.lower() not in 'aeiou')",
  ["remove_vowels('hello') == 'hll'", "remove_vowels('AEIOU') == ''", "remove_vowels('xyz') == 'xyz'"])
p("max_index", "Write a function max_index(nums) that returns the index of the largest number in a non-empty list (the first one on ties).",
  "def max_index(nums):\n    return nums.index(max(nums))",
  ["max_index([1, 5, 3]) == 1", "max_index([7]) == 0", "max_index([2, 9, 9]) == 1"])
p("min_index", "Write a function min_index(nums) that returns the index of the smallest number in a non-empty list (the first one on ties).",
  "def min_index(nums):\n    return nums.index(min(nums))",
  ["min_index([4, 1, 3]) == 1", "min_index([7]) == 0", "min_index([0, 5, 0]) == 0"])
p("count_words_starting", "Write a function count_words_starting(words, letter) that returns how many strings in words start with letter.",
  "def count_words_starting(words, letter):\n    return sum(1 for w in words if w.startswith(letter))",
  ["count_words_starting(['apple', 'avocado', 'pear'], 'a') == 2", "count_words_starting([], 'a') == 0", "count_words_starting(['Bee'], 'b') == 0"])
p("squares_up_to", "Write a function squares_up_to(n) that returns the list of squares 1, 4, 9, ... of the numbers 1 to n.",
  "def squares_up_to(n):\n    return [i * i for i in range(1, n + 1)]",
  ["squares_up_to(3) == [1, 4, 9]", "squares_up_to(0) == []", "squares_up_to(1) == [1]"])
p("evens_up_to", "Write a function evens_up_to(n) that returns the list of even numbers from 0 to n inclusive.",
  "def evens_up_to(n):\n    return list(range(0, n + 1, 2))",
  ["evens_up_to(6) == [0, 2, 4, 6]", "evens_up_to(1) == [0]", "evens_up_to(0) == [0]"])
p("sum_of_multiples", "Write a function sum_of_multiples(n) that returns the sum of all numbers below n that are multiples of 3 or 5.",
  "def sum_of_multiples(n):\n    return sum(i for i in range(n) if i % 3 == 0 or i % 5 == 0)",
  ["sum_of_multiples(10) == 23", "sum_of_multiples(1) == 0", "sum_of_multiples(16) == 60"])
p("fizzbuzz", "Write a function fizzbuzz(n) that returns 'Fizz' if n is divisible by 3, 'Buzz' if by 5, 'FizzBuzz' if by both, and otherwise str(n).",
  "def fizzbuzz(n):\n    if n % 15 == 0:\n        return 'FizzBuzz'\n    if n % 3 == 0:\n        return 'Fizz'\n    if n % 5 == 0:\n        return 'Buzz'\n    return str(n)",
  ["fizzbuzz(3) == 'Fizz'", "fizzbuzz(10) == 'Buzz'", "fizzbuzz(30) == 'FizzBuzz'", "fizzbuzz(7) == '7'"])
p("dot_product", "Write a function dot_product(a, b) that returns the sum of a[i] * b[i] for two lists of equal length.",
  "def dot_product(a, b):\n    return sum(x * y for x, y in zip(a, b))",
  ["dot_product([1, 2, 3], [4, 5, 6]) == 32", "dot_product([], []) == 0", "dot_product([2], [-3]) == -6"])
p("distance_1d", "Write a function distance_1d(a, b) that returns the distance between two numbers on a line.",
  "def distance_1d(a, b):\n    return abs(a - b)",
  ["distance_1d(3, 7) == 4", "distance_1d(7, 3) == 4", "distance_1d(-2, 2) == 4"])
p("manhattan", "Write a function manhattan(p, q) that returns the Manhattan distance between two points given as (x, y) tuples.",
  "def manhattan(p, q):\n    return abs(p[0] - q[0]) + abs(p[1] - q[1])",
  ["manhattan((0, 0), (3, 4)) == 7", "manhattan((1, 1), (1, 1)) == 0", "manhattan((-1, 2), (2, -2)) == 7"])
p("grade", "Write a function grade(score) that returns 'A' for scores of 90 or more, 'B' for 80-89, 'C' for 70-79 and 'F' below 70.",
  "def grade(score):\n    if score >= 90:\n        return 'A'\n    if score >= 80:\n        return 'B'\n    if score >= 70:\n        return 'C'\n    return 'F'",
  ["grade(95) == 'A'", "grade(85) == 'B'", "grade(70) == 'C'", "grade(12) == 'F'"])
p("bigger_of_two", "Write a function bigger_of_two(a, b) that returns the larger of two numbers.",
  "def bigger_of_two(a, b):\n    return a if a >= b else b",
  ["bigger_of_two(1, 2) == 2", "bigger_of_two(5, -5) == 5", "bigger_of_two(3, 3) == 3"])
p("last_digit", "Write a function last_digit(n) that returns the last decimal digit of a non-negative integer n.",
  "def last_digit(n):\n    return n % 10",
  ["last_digit(123) == 3", "last_digit(0) == 0", "last_digit(70) == 0"])
p("reverse_number", "Write a function reverse_number(n) that returns the integer whose digits are those of the non-negative integer n in reverse order.",
  "def reverse_number(n):\n    return int(str(n)[::-1])",
  ["reverse_number(123) == 321", "reverse_number(0) == 0", "reverse_number(120) == 21"])
p("is_digit_string", "Write a function is_digit_string(s) that returns True if s is non-empty and made only of the digits 0-9.",
  "def is_digit_string(s):\n    return len(s) > 0 and all(c in '0123456789' for c in s)",
  ["is_digit_string('123') is True", "is_digit_string('12a') is False", "is_digit_string('') is False"])
p("longest_string_length", "Write a function longest_string_length(words) that returns the length of the longest string in words (0 for an empty list).",
  "def longest_string_length(words):\n    return max((len(w) for w in words), default=0)",
  ["longest_string_length(['a', 'abcd']) == 4", "longest_string_length([]) == 0", "longest_string_length(['']) == 0"])
p("filter_long_words", "Write a function filter_long_words(words, n) that returns the strings of words longer than n characters, in order.",
  "def filter_long_words(words, n):\n    return [w for w in words if len(w) > n]",
  ["filter_long_words(['a', 'abc', 'abcd'], 2) == ['abc', 'abcd']", "filter_long_words([], 1) == []", "filter_long_words(['hi'], 5) == []"])
p("cumulative_product", "Write a function cumulative_product(nums) that returns the list of prefix products of nums.",
  "def cumulative_product(nums):\n    out = []\n    total = 1\n    for x in nums:\n        total *= x\n        out.append(total)\n    return out",
  ["cumulative_product([1, 2, 3, 4]) == [1, 2, 6, 24]", "cumulative_product([]) == []", "cumulative_product([5, 0, 2]) == [5, 0, 0]"])
p("pad_left", "Write a function pad_left(s, width) that returns s padded on the left with spaces to at least width characters.",
  "def pad_left(s, width):\n    return s.rjust(width)",
  ["pad_left('ab', 4) == '  ab'", "pad_left('abc', 2) == 'abc'", "pad_left('', 1) == ' '"])
p("initials", "Write a function initials(name) that returns the upper-case first letters of each space-separated word of name.",
  "def initials(name):\n    return ''.join(w[0].upper() for w in name.split())",
  ["initials('ada lovelace') == 'AL'", "initials('Alan Mathison Turing') == 'AMT'", "initials('') == ''"])
p("count_lines", "Write a function count_lines(text) that returns the number of lines in text (0 for an empty string).",
  "def count_lines(text):\n    return len(text.splitlines())",
  ["count_lines('a\\nb\\nc') == 3", "count_lines('') == 0", "count_lines('one line') == 1"])
p("only_letters", "Write a function only_letters(s) that returns s with every character that is not a letter removed.",
  "def only_letters(s):\n    return ''.join(c for c in s if c.isalpha())",
  ["only_letters('a1b2c3') == 'abc'", "only_letters('123') == ''", "only_letters('Hi, you!') == 'Hiyou'"])
p("sum_nested", "Write a function sum_nested(lists) that returns the sum of all numbers in a list of lists of numbers.",
  "def sum_nested(lists):\n    return sum(sum(inner) for inner in lists)",
  ["sum_nested([[1, 2], [3]]) == 6", "sum_nested([]) == 0", "sum_nested([[], [-1, 1]]) == 0"])
p("transpose", "Write a function transpose(matrix) that returns the transpose of a rectangular matrix given as a list of rows.",
  "def transpose(matrix):\n    return [list(row) for row in zip(*matrix)]",
  ["transpose([[1, 2], [3, 4]]) == [[1, 3], [2, 4]]", "transpose([[1, 2, 3]]) == [[1], [2], [3]]", "transpose([]) == []"])
p("diagonal_sum", "Write a function diagonal_sum(matrix) that returns the sum of the main diagonal of a square matrix.",
  "def diagonal_sum(matrix):\n    return sum(matrix[i][i] for i in range(len(matrix)))",
  ["diagonal_sum([[1, 2], [3, 4]]) == 5", "diagonal_sum([[7]]) == 7", "diagonal_sum([]) == 0"])
p("matrix_add", "Write a function matrix_add(a, b) that returns the element-wise sum of two matrices of the same shape.",
  "def matrix_add(a, b):\n    return [[x + y for x, y in zip(r, s)] for r, s in zip(a, b)]",
  ["matrix_add([[1, 2]], [[3, 4]]) == [[4, 6]]", "matrix_add([], []) == []", "matrix_add([[0], [1]], [[1], [1]]) == [[1], [2]]"])
p("most_common", "Write a function most_common(items) that returns the element appearing most often in a non-empty list (the one seen first on ties).",
  "def most_common(items):\n    counts = {}\n    for x in items:\n        counts[x] = counts.get(x, 0) + 1\n    best = items[0]\n    for x in items:\n        if counts[x] > counts[best]:\n            best = x\n    return best",
  ["most_common([1, 2, 2, 3]) == 2", "most_common(['a']) == 'a'", "most_common([1, 2, 1, 2]) == 1"])
p("group_by_length", "Write a function group_by_length(words) that returns a dictionary mapping each word length to the list of words of that length, in order.",
  "def group_by_length(words):\n    groups = {}\n    for w in words:\n        groups.setdefault(len(w), []).append(w)\n    return groups",
  ["group_by_length(['a', 'bb', 'c']) == {1: ['a', 'c'], 2: ['bb']}", "group_by_length([]) == {}", "group_by_length(['xy']) == {2: ['xy']}"])
p("has_duplicates", "Write a function has_duplicates(items) that returns True if some value occurs more than once in items.",
  "def has_duplicates(items):\n    return len(set(items)) != len(items)",
  ["has_duplicates([1, 2, 1]) is True", "has_duplicates([1, 2, 3]) is False", "has_duplicates([]) is False"])
p("difference", "Write a function difference(a, b) that returns the elements of list a that are not in list b, in order.",
  "def difference(a, b):\n    return [x for x in a if x not in b]",
  ["difference([1, 2, 3], [2]) == [1, 3]", "difference([], [1]) == []", "difference([1, 1], []) == [1, 1]"])
p("interleave", "Write a function interleave(a, b) that returns [a[0], b[0], a[1], b[1], ...] for two lists of equal length.",
  "def interleave(a, b):\n    out = []\n    for x, y in zip(a, b):\n        out.append(x)\n        out.append(y)\n    return out",
  ["interleave([1, 3], [2, 4]) == [1, 2, 3, 4]", "interleave([], []) == []", "interleave(['a'], ['b']) == ['a', 'b']"])
p("triangle_number", "Write a function triangle_number(n) that returns the n-th triangular number 1 + 2 + ... + n.",
  "def triangle_number(n):\n    return n * (n + 1) // 2",
  ["triangle_number(4) == 10", "triangle_number(0) == 0", "triangle_number(100) == 5050"])
p("number_to_words_digit", "Write a function digit_name(d) that returns the English name of a single digit 0-9, e.g. digit_name(3) == 'three'.",
  "def digit_name(d):\n    return ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'][d]",
  ["digit_name(3) == 'three'", "digit_name(0) == 'zero'", "digit_name(9) == 'nine'"])
p("percentage", "Write a function percentage(part, whole) that returns part as a percentage of whole, rounded to 2 decimal places.",
  "def percentage(part, whole):\n    return round(part * 100 / whole, 2)",
  ["percentage(1, 4) == 25.0", "percentage(1, 3) == 33.33", "percentage(0, 5) == 0.0"])
p("count_even", "Write a function count_even(nums) that returns how many numbers in nums are even.",
  "def count_even(nums):\n    return sum(1 for x in nums if x % 2 == 0)",
  ["count_even([1, 2, 4]) == 2", "count_even([]) == 0", "count_even([1, 3]) == 0"])
p("add_one", "Write a function add_one(nums) that returns a list with 1 added to every number of nums.",
  "def add_one(nums):\n    return [x + 1 for x in nums]",
  ["add_one([1, 2]) == [2, 3]", "add_one([]) == []", "add_one([-1]) == [0]"])
p("first_n", "Write a function first_n(items, n) that returns the first n elements of items (all of them if there are fewer).",
  "def first_n(items, n):\n    return items[:n]",
  ["first_n([1, 2, 3], 2) == [1, 2]", "first_n([1], 5) == [1]", "first_n([], 0) == []"])
