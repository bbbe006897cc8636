// A stopped or hung subscriber does not hold back other routes (tests to come).
